/**
 * One hour of a small broker's life, with fixed dates (STYLE.md known-answer fixtures): a policy,
 * the audit entries of the window (and one on each side of it), the certificates issued in it and
 * live at its end, two forced rotations. The figures the report must find are worked out in
 * report-builder.test.ts next to each assertion.
 */
import { chainEntry } from '../../../src/audit/index.js';
import type { AuditVerification } from '../../../src/audit/index.js';
import { Policy } from '../../../src/policy/index.js';
import type { AuditEntry, AuditEntryInput, RotationRecord, RotationTargetRecord } from '../../../src/store/index.js';
import type { CertificateFacts } from '../../../src/cli/report/report-builder.js';
import { parseReportWindow, type ReportWindow } from '../../../src/cli/report/report-window.js';

export const T0 = new Date('2026-03-01T09:00:00.000Z');
export const SECOND_MS = 1_000;
export const MINUTE_MS = 60 * SECOND_MS;
export const HOUR_MS = 60 * MINUTE_MS;
/** T0 + `minutes` (fractions allowed). */
export const at = (minutes: number): Date => new Date(T0.getTime() + Math.round(minutes * MINUTE_MS));

export const ALICE = 'spiffe://td.test/ops/alice';
export const IMPORT = 'spiffe://td.test/pipeline/import';
export const BLUR = 'spiffe://td.test/pipeline/blur';
export const WORKERS = 'spiffe://td.test/workers/**';
export const W1 = 'spiffe://td.test/workers/w1';
export const W2 = 'spiffe://td.test/workers/w2';
export const W3 = 'spiffe://td.test/workers/w3';

export const POLICY_YAML = `version: 1
trustDomain: td.test
joinTokens: { defaultTtl: 15m, maxTtl: 30m }
certificates: { defaultTtl: 1h, maxTtl: 4h }
tokens: { defaultTtl: 5m, maxTtl: 30m }
identities:
  - id: ${ALICE}
    role: operator
    description: the operator
    certificates: { maxTtl: 1h }
    resources: [api:broker]
  - id: ${IMPORT}
    role: service
    description: writes uploads
    dnsNames: [import.internal]
    certificates: { defaultTtl: 30m, maxTtl: 1h }
    tokens: { audiences: [storage.source], scopes: [media.source.write], maxTtl: 10m }
    resources: [bucket:source]
  - id: ${BLUR}
    role: service
    description: blurs
    certificates: { maxTtl: 2h }
    tokens: { audiences: [storage.source, storage.anonymized], scopes: [media.source.read, media.anonymized.write], maxTtl: 15m, requireBinding: false }
    resources: [bucket:source, bucket:anonymized]
  - id: ${WORKERS}
    role: service
    description: workers at any depth
    dnsNames: ["*.workers.td.test"]
    tokens: { audiences: [storage.source], scopes: [media.source.read, media.source.write, media.anonymized.write] }
`;

export function fixturePolicy(text = POLICY_YAML): Policy {
  return Policy.parse(text, 'policy.yaml');
}

/** The window [T0, T0 + 1h), asked as `--since 1h` at T0 + 1h. */
export const NOW = at(60);
export const WINDOW: ReportWindow = parseReportWindow({ since: '1h' }, NOW);

function input(minutes: number, actor: string, action: string, outcome: AuditEntryInput['outcome'], subject: string, details: AuditEntryInput['details'] = {}, reason = ''): AuditEntryInput {
  return { time: at(minutes), requestId: `req-${minutes}`, actor, action, outcome, subject, reason, details };
}

const expires = (minutes: number, ttlMinutes: number): string => new Date(Math.floor(at(minutes).getTime() / 1000) * 1000 + ttlMinutes * MINUTE_MS).toISOString();

/** The entries in time (and seq) order; the first is before the window, the last after it. */
export const ENTRY_INPUTS: readonly AuditEntryInput[] = [
  input(-5, ALICE, 'GetCertificate', 'allowed', 'ab'),
  input(1, ALICE, 'CreateJoinToken', 'allowed', IMPORT, { tokenId: 'jt1', ttlSeconds: 900 }),
  input(2, ALICE, 'CreateJoinToken', 'allowed', BLUR, { tokenId: 'jt2', ttlSeconds: 1800 }),
  input(3, 'anonymous', 'Enroll', 'allowed', IMPORT, { serial: 'c1', tokenId: 'jt1', latencyMs: 12 }),
  input(4, 'anonymous', 'Enroll', 'allowed', BLUR, { serial: 'c2', tokenId: 'jt2', latencyMs: 20 }),
  input(5, 'anonymous', 'Enroll', 'denied', '', { tokenId: 'jt1' }, 'join_token.used'),
  // 250 ms after the whole second the token's iat was rounded down to.
  { ...input(6, IMPORT, 'IssueToken', 'allowed', 'storage.source', { tokenId: 't1', scopes: 'media.source.write', expiresAt: expires(6, 5), bound: true, latencyMs: 3 }), time: new Date(at(6).getTime() + 250) },
  input(7, IMPORT, 'IssueToken', 'allowed', 'storage.source', { tokenId: 't2', scopes: 'media.source.write', expiresAt: expires(7, 10), bound: true, latencyMs: 5 }),
  input(8, BLUR, 'IssueToken', 'allowed', 'storage.source', { tokenId: 't3', scopes: 'media.source.read', expiresAt: expires(8, 15), bound: false, latencyMs: 4 }),
  input(9, BLUR, 'IssueToken', 'denied', 'storage.backup', {}, 'policy.scope'),
  input(10, ALICE, 'ForceRotate', 'allowed', BLUR, { rotationId: 'rot-1', reason: 'superseded', targeted: 1, connected: 1 }),
  input(10.5, BLUR, 'Renew', 'allowed', BLUR, { serial: 'c3', renewedFrom: 'c2', latencyMs: 30 }),
  input(20, IMPORT, 'Renew', 'allowed', IMPORT, { serial: 'c4', renewedFrom: 'c1', latencyMs: 40 }),
  input(35, IMPORT, 'Renew', 'allowed', IMPORT, { serial: 'c5', renewedFrom: 'c4' }),
  input(40, ALICE, 'GetCertificate', 'allowed', 'c5'),
  input(41, 'anonymous', 'Watch', 'denied', '', {}, 'peer.no_certificate'),
  input(45, ALICE, 'ForceRotate', 'allowed', WORKERS, { rotationId: 'rot-2', reason: 'superseded', targeted: 3, connected: 0 }),
  input(61, ALICE, 'GetCertificate', 'allowed', 'c5'),
];

/** The entries chained (seq 1 … 18). */
export function fixtureEntries(): AuditEntry[] {
  const entries: AuditEntry[] = [];
  let last: AuditEntry | null = null;
  for (const entry of ENTRY_INPUTS) {
    last = chainEntry(last, entry);
    entries.push(last);
  }
  return entries;
}

function certificate(serial: string, spiffeId: string, issuedMinutes: number, ttlMinutes: number, profile: CertificateFacts['profile'] = 'service', extraMs = 0): CertificateFacts {
  const issuedAt = new Date(at(issuedMinutes).getTime() + extraMs);
  return {
    serial,
    spiffeId,
    profile,
    issuedAt,
    notBefore: new Date(Math.floor((issuedAt.getTime() - MINUTE_MS) / 1000) * 1000),
    notAfter: new Date(Math.floor((issuedAt.getTime() + ttlMinutes * MINUTE_MS) / 1000) * 1000),
    revokedAt: null,
  };
}

/** Certificates issued in the window and around it. */
export const ISSUED: readonly CertificateFacts[] = [
  certificate('c0', ALICE, -30, 60, 'operator'),
  certificate('c1', IMPORT, 3, 30),
  // Issued 400 ms past a second: notAfter is rounded down, the lifetime is still the cap (2h).
  certificate('c2', BLUR, 4, 120, 'service', 400),
  certificate('c3', BLUR, 10.5, 60),
  certificate('c4', IMPORT, 20, 30),
  certificate('c5', IMPORT, 35, 30),
];

/** Certificates the store could list as live at the window's end, and some it would not. */
export const LIVE: readonly CertificateFacts[] = [
  certificate('c3', BLUR, 10.5, 60),
  certificate('c5', IMPORT, 35, 30),
  // Issued 50 min before the window for 4h: at 2/3 of its life only at T0 + 110 min.
  certificate('w1', W1, -50, 240),
  // Issued 150 min before the window for 4h: due at T0 + 10 min, not renewed.
  certificate('w3', W3, -150, 240),
  // Not live: expired before the window's end, and revoked (by rot-1's renewal) before it.
  certificate('c4', IMPORT, 20, 30),
  { ...certificate('c2', BLUR, 4, 120), revokedAt: at(10.5) },
  certificate('srv', 'spiffe://td.test/credbroker', -60, 720, 'server'),
];

export const ROTATIONS: readonly { rotation: RotationRecord; targets: RotationTargetRecord[] }[] = [
  {
    rotation: { id: 'rot-1', selector: BLUR, reason: 'superseded', requestedBy: ALICE, requestedAt: at(10) },
    targets: [{ rotationId: 'rot-1', serial: 'c2', spiffeId: BLUR, notAfter: at(124), connected: true, status: 'rotated', newSerial: 'c3', finishedAt: at(10.5) }],
  },
  {
    rotation: { id: 'rot-2', selector: WORKERS, reason: 'superseded', requestedBy: ALICE, requestedAt: at(45) },
    targets: [
      { rotationId: 'rot-2', serial: 'w1', spiffeId: W1, notAfter: at(190), connected: false, status: 'pending', newSerial: null, finishedAt: null },
      // Its certificate ends at T0 + 50 min, before the report: expired unrenewed.
      { rotationId: 'rot-2', serial: 'w2', spiffeId: W2, notAfter: at(50), connected: false, status: 'pending', newSerial: null, finishedAt: null },
      { rotationId: 'rot-2', serial: 'w3', spiffeId: W3, notAfter: at(90), connected: false, status: 'pending', newSerial: null, finishedAt: null },
    ],
  },
];

/** The verifier's result: 40 entries, the last checkpoint at the entry of T0 + 20 min (seq 13), signed 10 min before NOW. */
export const VERIFICATION: AuditVerification = {
  ok: true,
  entries: 40,
  checkpoints: 2,
  signaturesChecked: true,
  headSeq: 40,
  lastCheckpointSeq: 13,
  lastCheckpointTime: at(50),
  keySpkiSha256: 'ab'.repeat(32),
};
