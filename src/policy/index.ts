/**
 * Who may get what: the issuance policy (DESIGN.md invariants 4 and 6). Imports only src/config
 * and src/core.
 */
export { Policy, type IdentityPolicy } from './policy.js';
export { loadPolicyFile } from './load-policy-file.js';
export { PolicyHolder, type PolicyHolderEvents, type PolicyReloadResult } from './policy-holder.js';
export { ROLES, type Role, policySchema } from './policy-schema.js';
export { type PolicyFinding } from './policy-findings.js';
export { checkTokenRequest, type TokenGrant } from './token-grant.js';
export {
  clampTtl,
  MAX_CERTIFICATE_TTL_MS,
  MAX_DEFAULT_CERTIFICATE_TTL_MS,
  MAX_DEFAULT_JOIN_TOKEN_TTL_MS,
  MAX_DEFAULT_TOKEN_TTL_MS,
  MAX_JOIN_TOKEN_TTL_MS,
  MAX_TOKEN_TTL_MS,
  MIN_POLICY_TTL_MS,
  type TtlLimits,
} from './ttl-limits.js';
export { parseSpiffePattern, spiffePatternMatches, trustDomainProblem, type SpiffePattern, type SpiffePatternResult } from './spiffe-pattern.js';
export { dnsPatternProblem } from './dns-pattern.js';
export { ipBlockProblem, parseIpBlock, type IpBlock } from './ip-block.js';
