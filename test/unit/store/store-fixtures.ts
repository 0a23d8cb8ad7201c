/** Records for store tests: deterministic, with fixed dates (STYLE.md known-answer fixtures). */
import { createHash } from 'node:crypto';
import { chainEntry } from '../../../src/audit/index.js';
import type { AuditEntry, AuditEntryInput, CertificateRecord, JoinTokenRecord } from '../../../src/store/index.js';

export const T0 = new Date('2026-03-01T09:00:00.000Z');
export const MINUTE_MS = 60_000;
export const HOUR_MS = 60 * MINUTE_MS;

export const at = (offsetMs: number): Date => new Date(T0.getTime() + offsetMs);
export const sha256Hex = (text: string | Uint8Array): string => createHash('sha256').update(text).digest('hex');

/** A serial from a number: positive, lowercase hex, 16 bytes like the broker's. */
export const serialOf = (n: number): string => `7f${n.toString(16).padStart(30, '0')}`;

/** A certificate issued at T0 + n minutes, valid one hour. */
export function certificate(n: number, overrides: Partial<CertificateRecord> = {}): CertificateRecord {
  const issuedAt = overrides.issuedAt ?? at(n * MINUTE_MS);
  const der = new Uint8Array(Buffer.from(`certificate ${n} ${overrides.serial ?? ''}`, 'utf8'));
  return {
    serial: serialOf(n),
    spiffeId: `spiffe://anonymizer.test/workers/w${n % 3}`,
    profile: 'service',
    notBefore: new Date(issuedAt.getTime() - MINUTE_MS),
    notAfter: new Date(issuedAt.getTime() + HOUR_MS),
    issuedAt,
    sha256: sha256Hex(der),
    spkiSha256: sha256Hex(`spki ${n}`),
    issuerSerial: '01',
    renewedFrom: null,
    der,
    revokedAt: null,
    revocationReason: null,
    ...overrides,
  };
}

/** An unused join token created at T0, expiring after 15 minutes. */
export function joinToken(n: number, overrides: Partial<JoinTokenRecord> = {}): JoinTokenRecord {
  return {
    id: `jt${n.toString().padStart(4, '0')}`,
    hash: sha256Hex(`cbjt1-secret-${n}`),
    spiffeId: `spiffe://anonymizer.test/workers/w${n}`,
    createdBy: 'spiffe://anonymizer.test/operators/alice',
    createdAt: T0,
    expiresAt: at(15 * MINUTE_MS),
    usedAt: null,
    usedForSerial: null,
    ...overrides,
  };
}

/** An audit input at T0 + n seconds. */
export function auditInput(n: number, overrides: Partial<AuditEntryInput> = {}): AuditEntryInput {
  return {
    time: at(n * 1_000),
    requestId: `req-${n}`,
    actor: n % 2 === 0 ? 'spiffe://anonymizer.test/operators/alice' : 'anonymous',
    action: n % 3 === 0 ? 'Revoke' : 'Enroll',
    outcome: n % 4 === 0 ? 'denied' : 'allowed',
    subject: `spiffe://anonymizer.test/workers/w${n % 5}`,
    reason: n % 4 === 0 ? 'join_token.used' : '',
    details: { serial: serialOf(n), ttlSeconds: 3600, renewal: n % 2 === 1, sans: [`w${n}.anonymizer.test`, '10.0.0.1'] },
    ...overrides,
  };
}

/** `count` chained entries, starting after `previous`. */
export function chain(count: number, previous: AuditEntry | null = null, first = 1): AuditEntry[] {
  const entries: AuditEntry[] = [];
  let last = previous;
  for (let n = first; n < first + count; n++) {
    last = chainEntry(last, auditInput(n));
    entries.push(last);
  }
  return entries;
}
