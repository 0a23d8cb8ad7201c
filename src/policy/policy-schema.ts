/**
 * The schema of a policy file (version 1), field by field. Strict: unknown keys are errors.
 * Everything that one field or one block can decide is decided here (syntax of IDs, names,
 * addresses, audiences and scopes; durations; duplicates in a list; default ≤ max; the hard
 * caps). What needs two places of the file (an ID inside the trust domain, identity TTLs under
 * the global ones, duplicate IDs, operator patterns) is in policy-checks.ts.
 */
import { z } from 'zod';
import { formatDurationMs, parseDurationMs } from '../core/index.js';
import { dnsPatternProblem } from './dns-pattern.js';
import { ipBlockProblem } from './ip-block.js';
import { parseSpiffePattern, trustDomainProblem } from './spiffe-pattern.js';
import {
  MAX_CERTIFICATE_TTL_MS,
  MAX_DEFAULT_CERTIFICATE_TTL_MS,
  MAX_DEFAULT_JOIN_TOKEN_TTL_MS,
  MAX_DEFAULT_TOKEN_TTL_MS,
  MAX_JOIN_TOKEN_TTL_MS,
  MAX_TOKEN_TTL_MS,
  MIN_POLICY_TTL_MS,
} from './ttl-limits.js';

/** Roles an identity can have: `operator` may call operator RPCs; `service` may not. */
export const ROLES = Object.freeze(['service', 'operator'] as const);
/** The role of an identity. */
export type Role = (typeof ROLES)[number];

/** Longest audience, scope or resource name. */
const MAX_WORD_LENGTH = 256;
/** RFC 6749 §3.3 scope-token characters: printable ASCII except space, `"` and `\`. */
const WORD = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** A duration with a unit (`5m`, `1h`), parsed to milliseconds, at least {@link MIN_POLICY_TTL_MS}. */
export const ttlSchema = z
  .string({
    error: (issue) =>
      issue.input === undefined ? 'missing: expected a duration such as 5m or 1h' : 'expected a duration with a unit (ms, s, m, h, d), e.g. 5m or 1h',
  })
  .transform((text, ctx) => {
    let ms: number;
    try {
      ms = parseDurationMs(text);
    } catch (error) {
      ctx.issues.push({ code: 'custom', input: text, message: error instanceof Error ? error.message : String(error) });
      return z.NEVER;
    }
    if (ms < MIN_POLICY_TTL_MS) {
      ctx.issues.push({ code: 'custom', input: text, message: `"${text}" is shorter than ${formatDurationMs(MIN_POLICY_TTL_MS)}, the shortest TTL policy accepts` });
      return z.NEVER;
    }
    return ms;
  });

/**
 * A global TTL block: both fields required; default ≤ max; default ≤ the invariant's default
 * (policy can only lower it); max ≤ the hard cap.
 */
function globalTtlSchema(block: string, maxDefaultMs: number, hardCapMs: number) {
  return z.strictObject({ defaultTtl: ttlSchema, maxTtl: ttlSchema }).superRefine((ttl, ctx) => {
    if (ttl.defaultTtl > ttl.maxTtl) {
      ctx.addIssue({ code: 'custom', path: ['defaultTtl'], message: `${formatDurationMs(ttl.defaultTtl)} is above ${block}.maxTtl (${formatDurationMs(ttl.maxTtl)})` });
    }
    if (ttl.defaultTtl > maxDefaultMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultTtl'],
        message: `${formatDurationMs(ttl.defaultTtl)} is above ${formatDurationMs(maxDefaultMs)}, the longest default credbroker allows for ${block} (DESIGN.md invariant 4: policy can only lower it)`,
      });
    }
    if (ttl.maxTtl > hardCapMs) {
      ctx.addIssue({
        code: 'custom',
        path: ['maxTtl'],
        message: `${formatDurationMs(ttl.maxTtl)} is above the hard cap of ${formatDurationMs(hardCapMs)} for ${block} (DESIGN.md invariant 4)`,
      });
    }
  });
}

/** `joinTokens`: default ≤ 15 min, max ≤ 1 h. */
export const joinTokenTtlSchema = globalTtlSchema('joinTokens', MAX_DEFAULT_JOIN_TOKEN_TTL_MS, MAX_JOIN_TOKEN_TTL_MS);
/** Global `certificates`: default ≤ 1 h, max ≤ 24 h. */
export const certificateTtlSchema = globalTtlSchema('certificates', MAX_DEFAULT_CERTIFICATE_TTL_MS, MAX_CERTIFICATE_TTL_MS);
/** Global `tokens`: default ≤ 5 min, max ≤ 1 h. */
export const tokenTtlSchema = globalTtlSchema('tokens', MAX_DEFAULT_TOKEN_TTL_MS, MAX_TOKEN_TTL_MS);

/** An identity's own TTLs: each optional (absent = the global one); default ≤ max when both. */
const identityTtlShape = { defaultTtl: ttlSchema.optional(), maxTtl: ttlSchema.optional() };

function checkDefaultBelowMax(ttl: { defaultTtl?: number | undefined; maxTtl?: number | undefined }, ctx: z.RefinementCtx): void {
  if (ttl.defaultTtl !== undefined && ttl.maxTtl !== undefined && ttl.defaultTtl > ttl.maxTtl) {
    ctx.addIssue({ code: 'custom', path: ['defaultTtl'], message: `${formatDurationMs(ttl.defaultTtl)} is above maxTtl (${formatDurationMs(ttl.maxTtl)})` });
  }
}

/** An identity's `certificates` block. */
export const identityTtlSchema = z.strictObject(identityTtlShape).superRefine(checkDefaultBelowMax);

/** A string checked by `problemOf` (a phrase, or null when fine), quoted in the message. */
function checkedString(what: string, problemOf: (text: string) => string | null) {
  return z.string().superRefine((text, ctx) => {
    const problem = problemOf(text);
    if (problem !== null) ctx.addIssue({ code: 'custom', input: text, message: `${what} ${JSON.stringify(text.slice(0, 120))} ${problem}` });
  });
}

/** A list of strings with no duplicates; each duplicate is reported at its own index. */
function uniqueList(item: z.ZodType<string>, what: string) {
  return z.array(item).superRefine((items, ctx) => {
    const firstIndex = new Map<string, number>();
    items.forEach((value, index) => {
      const first = firstIndex.get(value);
      if (first === undefined) firstIndex.set(value, index);
      else ctx.addIssue({ code: 'custom', path: [index], message: `duplicate ${what} ${JSON.stringify(value.slice(0, 120))} (already at [${first}])` });
    });
  });
}

/** Audience, scope or resource name: RFC 6749 scope-token characters, no `*`. */
function wordProblem(text: string): string | null {
  if (text.length === 0) return 'is empty';
  if (text.length > MAX_WORD_LENGTH) return `is longer than ${MAX_WORD_LENGTH} characters`;
  if (/\s/.test(text)) return 'contains whitespace';
  if (text.includes('*')) return 'contains "*": there are no wildcards, list each value exactly';
  if (!WORD.test(text)) return 'contains a character outside printable ASCII, or `"` or `\\`';
  return null;
}

/** `trustDomain`. */
export const trustDomainSchema = checkedString('trust domain', trustDomainProblem);

/** An identity's `id`: a SPIFFE ID or pattern. */
export const identityIdSchema = checkedString('SPIFFE ID', (text) => {
  const parsed = parseSpiffePattern(text);
  return parsed.ok ? null : parsed.problem;
});

/** An identity's `role`. */
export const roleSchema = z.enum(ROLES, {
  error: (issue) => (issue.input === undefined ? `missing: expected one of ${ROLES.map((role) => `"${role}"`).join(', ')}` : undefined),
});

/** An identity's `tokens` block (absent: the identity may get no tokens). */
export const tokenGrantSchema = z
  .strictObject({
    audiences: uniqueList(checkedString('audience', wordProblem), 'audience').min(1),
    scopes: uniqueList(checkedString('scope', wordProblem), 'scope').min(1),
    ...identityTtlShape,
    /** Secure by default: tokens are bound to the caller's certificate unless this says false. */
    requireBinding: z.boolean().default(true),
  })
  .superRefine(checkDefaultBelowMax);

/** One entry of `identities`. */
export const identitySchema = z.strictObject({
  id: identityIdSchema,
  role: roleSchema,
  /** Why this identity exists and what it does: policy is reviewed like code. */
  description: z.string().trim().min(1).max(500),
  dnsNames: uniqueList(checkedString('DNS name', dnsPatternProblem), 'DNS name').default([]),
  ipAddresses: uniqueList(checkedString('IP address', ipBlockProblem), 'IP address').default([]),
  certificates: identityTtlSchema.optional(),
  tokens: tokenGrantSchema.optional(),
  resources: uniqueList(checkedString('resource', wordProblem), 'resource').default([]),
});

/** The whole policy file, version 1. */
export const policySchema = z
  .strictObject({
    version: z.literal(1, { error: 'expected version: 1' }),
    trustDomain: trustDomainSchema,
    joinTokens: joinTokenTtlSchema,
    certificates: certificateTtlSchema,
    tokens: tokenTtlSchema,
    identities: z.array(identitySchema),
  })
  .describe('credbroker issuance policy');

/** A policy file as validated by the schema, durations in milliseconds. */
export type PolicyInput = z.output<typeof policySchema>;
/** One identity entry as validated by the schema. */
export type IdentityInput = z.output<typeof identitySchema>;
