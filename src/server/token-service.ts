/**
 * Tokens/IssueToken and Tokens/GetJwks: short-lived signed tokens for the caller's own identity,
 * with exactly the audiences and scopes policy grants it (src/policy/token-grant.ts), signed by
 * the HSM's token-signing key through src/tokens. Every issuance is one audit entry (token id,
 * audience, scopes, expiry, binding), never the token itself.
 */
import { BrokerError, type Clock } from '../core/index.js';
import { checkTokenRequest, clampTtl, type PolicyHolder } from '../policy/index.js';
import type { JWK } from 'jose';
import { jwksJson, jwksOf, type TokenIssuer } from '../tokens/index.js';
import { requirePeer, type Caller, type Decisions } from './decisions.js';

/** What IssueToken returns. */
export interface IssuedTokenReply {
  readonly token: string;
  readonly tokenId: string;
  readonly expiresAtUnix: number;
  readonly bound: boolean;
  readonly requestId: string;
}

/** An issued token as metrics see it: no token text, no subject. */
export interface IssuedTokenFacts {
  readonly audience: string;
  readonly bound: boolean;
  /** `exp − iat`, in seconds. */
  readonly ttlSeconds: number;
  /** `exp` (set by TokenService). */
  readonly expiresAt?: Date;
}

/** Most scopes one request may name (policy grants far fewer). */
const MAX_SCOPES = 64;

/** The token decisions. */
export class TokenService {
  readonly #decisions: Decisions;
  readonly #policy: PolicyHolder;
  readonly #issuer: () => TokenIssuer | null;
  readonly #clock: Clock;
  readonly #onIssued: (token: IssuedTokenFacts) => void;
  readonly #published: (() => readonly JWK[]) | null;

  /**
   * @param options.issuer the current token issuer, or null when the broker has no token-signing key configured
   * @param options.onIssued called after each issued token's audit entry committed (metrics); must not throw
   * @param options.published the keys GetJwks lists (during a key roll-over also the next and the
   *   retiring one); default: the current issuer's key only
   */
  constructor(options: {
    decisions: Decisions;
    policy: PolicyHolder;
    issuer: () => TokenIssuer | null;
    clock: Clock;
    onIssued?: (token: IssuedTokenFacts) => void;
    published?: () => readonly JWK[];
  }) {
    this.#published = options.published ?? null;
    this.#decisions = options.decisions;
    this.#policy = options.policy;
    this.#issuer = options.issuer;
    this.#clock = options.clock;
    this.#onIssued = options.onIssued ?? (() => undefined);
  }

  /** IssueToken: for the caller's identity, within its grant. */
  issueToken(caller: Caller, request: { audience: string; scopes: readonly string[]; ttlSeconds: number; bindToCertificate: boolean }): Promise<IssuedTokenReply> {
    return this.#decisions.decide(caller, 'IssueToken', request.audience.slice(0, 256), async (record) => {
      const peer = requirePeer(caller);
      const issuer = this.#issuer();
      if (issuer === null) {
        throw new BrokerError('conflict', { code: 'tokens.not_configured', publicMessage: 'this broker issues no tokens: its config has no tokens section (token-signing key)' });
      }
      if (request.scopes.length > MAX_SCOPES) {
        throw new BrokerError('invalid', { code: 'policy.scope', publicMessage: `at most ${MAX_SCOPES} scopes per token` });
      }
      const identity = this.#policy.current.lookup(peer.spiffeId);
      const grant = identity?.tokens ?? null;
      checkTokenRequest(grant, request.audience, request.scopes);
      if (grant === null) throw new BrokerError('denied', { code: 'policy.no_tokens', publicMessage: 'policy grants this identity no tokens' });
      const ttlMs = clampTtl(request.ttlSeconds === 0 ? undefined : request.ttlSeconds * 1000, grant);
      const bound = request.bindToCertificate || grant.requireBinding;
      const scopes = [...new Set(request.scopes)];
      const now = this.#clock.now();
      const token = await issuer.issue({
        subject: peer.spiffeId,
        audience: request.audience,
        scopes,
        ttlMs,
        now,
        ...(bound ? { certificateSha256: Buffer.from(peer.certificateSha256, 'hex') } : {}),
      });
      record.details.tokenId = token.jti;
      await this.#decisions.store.transaction(async (tx) => {
        await this.#decisions.allowed(tx, caller, 'IssueToken', request.audience, {
          tokenId: token.jti,
          scopes: scopes.join(' '),
          expiresAt: token.expiresAt.toISOString(),
          bound,
          kid: token.kid,
          certificateSerial: peer.serial,
        });
      });
      this.#onIssued({ audience: request.audience, bound, ttlSeconds: (token.expiresAt.getTime() - token.issuedAt.getTime()) / 1000, expiresAt: token.expiresAt });
      return { token: token.token, tokenId: token.jti, expiresAtUnix: Math.floor(token.expiresAt.getTime() / 1000), bound, requestId: caller.requestId };
    });
  }

  /** GetJwks: the public keys that verify tokens (the next key too, before it signs anything). */
  jwks(): { jwksJson: string; currentKid: string } {
    const issuer = this.#issuer();
    if (issuer === null) return { jwksJson: '{"keys":[]}', currentKid: '' };
    return { jwksJson: jwksJson(jwksOf(this.#published === null ? [issuer.jwk] : [...this.#published()])), currentKid: issuer.kid };
  }
}
