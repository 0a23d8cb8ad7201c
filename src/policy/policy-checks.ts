/**
 * The checks of a policy file that involve two places of it: every identity inside the trust
 * domain, no identity twice, no operator pattern, identity TTLs under the global ones.
 *
 * They run on the raw document beside the schema, on every part that is valid by itself, so a
 * file with an unknown key and an identity TTL above the global cap reports both at once.
 */
import { formatDurationMs } from '../core/index.js';
import type { ConfigProblem } from '../config/index.js';
import { roleSchema, trustDomainSchema, ttlSchema } from './policy-schema.js';
import { parseSpiffePattern } from './spiffe-pattern.js';
import { MAX_CERTIFICATE_TTL_MS, MAX_DEFAULT_CERTIFICATE_TTL_MS, MAX_DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS } from './ttl-limits.js';

/** Every cross-field problem of a raw policy document, with field paths. */
export function crossFieldProblems(document: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!isRecord(document) || !Array.isArray(document.identities)) return problems;
  const trustDomain = valid(trustDomainSchema, document.trustDomain);
  const globalTtls = {
    certificates: globalTtl(document.certificates, MAX_DEFAULT_CERTIFICATE_TTL_MS, MAX_CERTIFICATE_TTL_MS),
    tokens: globalTtl(document.tokens, MAX_DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS),
  };
  const firstIndexOfId = new Map<string, number>();

  (document.identities as unknown[]).forEach((identity, index) => {
    if (!isRecord(identity)) return;
    const at = `identities[${index}]`;
    if (typeof identity.id === 'string') {
      const id = identity.id;
      const parsed = parseSpiffePattern(id);
      if (parsed.ok && trustDomain !== undefined && parsed.pattern.trustDomain !== trustDomain) {
        problems.push({
          path: `${at}.id`,
          message: `SPIFFE ID ${JSON.stringify(id)} is in the trust domain "${parsed.pattern.trustDomain}", not in this policy's trust domain "${trustDomain}"`,
        });
      }
      if (parsed.ok && parsed.pattern.isPattern && valid(roleSchema, identity.role) === 'operator') {
        problems.push({
          path: `${at}.role`,
          message: `a pattern cannot have the role operator: an operator is one person or tool with one exact SPIFFE ID; list each operator on its own`,
        });
      }
      const first = firstIndexOfId.get(id);
      if (first === undefined) firstIndexOfId.set(id, index);
      else problems.push({ path: `${at}.id`, message: `duplicate identity ${JSON.stringify(id)} (already at identities[${first}])` });
    }
    for (const block of ['certificates', 'tokens'] as const) {
      const global = globalTtls[block];
      const own = identity[block];
      if (!isRecord(own)) continue;
      const defaultTtl = valid(ttlSchema, own.defaultTtl);
      const maxTtl = valid(ttlSchema, own.maxTtl);
      if (defaultTtl !== undefined && global.defaultTtl !== undefined && defaultTtl > global.defaultTtl) {
        problems.push({
          path: `${at}.${block}.defaultTtl`,
          message: `${formatDurationMs(defaultTtl)} is above the global ${block}.defaultTtl (${formatDurationMs(global.defaultTtl)}): an identity may only lower it`,
        });
      }
      if (maxTtl !== undefined && global.maxTtl !== undefined && maxTtl > global.maxTtl) {
        problems.push({
          path: `${at}.${block}.maxTtl`,
          message: `${formatDurationMs(maxTtl)} is above the global ${block}.maxTtl (${formatDurationMs(global.maxTtl)}): an identity may only lower it`,
        });
      }
    }
  });
  return problems;
}

/**
 * A global TTL block's fields, each one that is valid on its own, lowered to its cap: when the
 * global block itself is broken (and reported by the schema), identities are still compared
 * with what the global block could at most allow.
 */
function globalTtl(block: unknown, maxDefaultMs: number, hardCapMs: number): { defaultTtl?: number; maxTtl?: number } {
  if (!isRecord(block)) return {};
  const defaultTtl = valid(ttlSchema, block.defaultTtl);
  const maxTtl = valid(ttlSchema, block.maxTtl);
  return {
    ...(defaultTtl === undefined ? {} : { defaultTtl: Math.min(defaultTtl, maxDefaultMs) }),
    ...(maxTtl === undefined ? {} : { maxTtl: Math.min(maxTtl, hardCapMs) }),
  };
}

/** Keys in the order the schema (and every example) writes them; unknown keys sort last. */
const KEY_ORDER = [
  // One order that fits every level: the top level (version … identities), an identity
  // (id … resources), a tokens block (audiences … requireBinding) and a TTL block.
  'version',
  'trustDomain',
  'joinTokens',
  'id',
  'role',
  'description',
  'dnsNames',
  'ipAddresses',
  'certificates',
  'tokens',
  'audiences',
  'scopes',
  'defaultTtl',
  'maxTtl',
  'requireBinding',
  'resources',
  'identities',
];

/**
 * Sorts problems into file order, as far as paths tell it: keys in schema order, list items
 * by index, a whole-file problem first; problems at the same path keep their relative order.
 */
export function inDocumentOrder(problems: readonly ConfigProblem[]): ConfigProblem[] {
  const parts = (path: string): (string | number)[] =>
    [...path.matchAll(/([A-Za-z_$][\w$-]*)|\[(\d+)\]|\[("(?:[^"\\]|\\.)*")\]/g)].map((m) => (m[2] === undefined ? (m[1] ?? m[3] ?? '') : Number(m[2])));
  const rank = (key: string): number => {
    const index = KEY_ORDER.indexOf(key);
    return index === -1 ? KEY_ORDER.length : index;
  };
  const compare = (a: readonly (string | number)[], b: readonly (string | number)[]): number => {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const x = a[i];
      const y = b[i];
      if (x === y) continue;
      if (typeof x === 'number' && typeof y === 'number') return x - y;
      if (typeof x === 'string' && typeof y === 'string') return rank(x) - rank(y) || (x < y ? -1 : 1);
      return typeof x === 'number' ? -1 : 1;
    }
    return a.length - b.length;
  };
  return problems
    .map((problem, position) => ({ problem, position, parts: parts(problem.path) }))
    .sort((a, b) => compare(a.parts, b.parts) || a.position - b.position)
    .map(({ problem }) => problem);
}

/** The parsed value if `value` is valid for `schema` on its own, else undefined. */
function valid<T>(schema: { safeParse(value: unknown): { success: true; data: T } | { success: false } }, value: unknown): T | undefined {
  const result = schema.safeParse(value);
  return result.success ? result.data : undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
