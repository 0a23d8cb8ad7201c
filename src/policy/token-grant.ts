/**
 * Which signed tokens an identity may get (DESIGN.md "Tokens"), and the check of one request
 * against it. Audiences and scopes compare exactly: there are no wildcards (granularity).
 */
import { BrokerError } from '../core/index.js';

/** The tokens an identity may get. */
export interface TokenGrant {
  /** Exact `aud` values allowed, one per token. Never empty. */
  readonly audiences: readonly string[];
  /** Exact scope strings allowed; a token carries a subset. Never empty. */
  readonly scopes: readonly string[];
  /** Effective: the identity's, else the global `tokens.defaultTtl`. */
  readonly defaultTtlMs: number;
  /** Effective: the identity's, else the global `tokens.maxTtl`. */
  readonly maxTtlMs: number;
  /** Tokens must carry `cnf` `x5t#S256` of the caller's certificate (RFC 8705 §3.1). */
  readonly requireBinding: boolean;
}

/** Longest audience or scope the broker accepts in a request; longer ones are refused unseen. */
const MAX_WORD_LENGTH = 256;

/**
 * Checks that `grant` allows a token for `audience` with `scopes`. Every scope must be granted
 * and at least one must be asked for: a token without scopes would mean "whatever the audience
 * gives by default", which is not least privilege.
 *
 * @throws BrokerError denied `policy.no_tokens` when the identity may get no tokens;
 *   invalid `policy.audience` / `policy.scope` for an empty or malformed audience or an empty
 *   scope list; denied `policy.audience` naming an audience not granted; denied `policy.scope`
 *   naming every scope asked for that is not granted. Messages never list what *is* granted.
 */
export function checkTokenRequest(grant: TokenGrant | null, audience: string, scopes: readonly string[]): void {
  if (grant === null) {
    throw new BrokerError('denied', { code: 'policy.no_tokens', publicMessage: 'policy grants this identity no tokens' });
  }
  if (audience.length === 0 || audience.length > MAX_WORD_LENGTH || /\s/.test(audience)) {
    throw new BrokerError('invalid', {
      code: 'policy.audience',
      publicMessage: `expected one audience of 1 to ${MAX_WORD_LENGTH} characters without whitespace`,
    });
  }
  if (!grant.audiences.includes(audience)) {
    throw new BrokerError('denied', {
      code: 'policy.audience',
      publicMessage: `policy does not allow this identity tokens for the audience ${JSON.stringify(audience)}`,
    });
  }
  if (scopes.length === 0) {
    throw new BrokerError('invalid', { code: 'policy.scope', publicMessage: 'expected at least one scope' });
  }
  const refused = [...new Set(scopes.filter((scope) => !grant.scopes.includes(scope)))];
  if (refused.length > 0) {
    const shown = refused.slice(0, 10).map((scope) => JSON.stringify(scope.slice(0, MAX_WORD_LENGTH)));
    const more = refused.length > shown.length ? ` and ${refused.length - shown.length} more` : '';
    throw new BrokerError('denied', {
      code: 'policy.scope',
      publicMessage: `policy does not allow this identity the scope${refused.length === 1 ? '' : 's'} ${shown.join(', ')}${more}`,
    });
  }
}
