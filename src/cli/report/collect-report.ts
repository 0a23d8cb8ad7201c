/**
 * Reads one window's data out of a broker's store into a {@link ReportBuilder}. The store should
 * be opened read-only: a running broker keeps writing.
 *
 * 1. One audit snapshot: the verifier reads every entry once, in seq order, and the builder sees
 *    each one on the way (it keeps those of the window). One pass serves both, and the entries
 *    counted are exactly the entries verified. Should the verifier stop at a bad entry, the
 *    window's remaining entries are read in step 2 (the report still covers the whole window,
 *    and says the chain is broken).
 * 2. One read transaction: the certificates issued in the window and live at its end, the forced
 *    rotations its ForceRotate entries started, the join tokens outstanding at its end.
 */
import type { KeyObject } from 'node:crypto';
import { verifyAuditLog, type AuditVerification } from '../../audit/index.js';
import type { Policy } from '../../policy/index.js';
import type { AuditEntry, CertificateRecord, SqliteStore, StoreTransaction } from '../../store/index.js';
import type { MetricsReport } from './metrics-report.js';
import { ReportBuilder, type CertificateFacts } from './report-builder.js';
import type { ReportWindow } from './report-window.js';

/** Largest page the store hands out. */
const PAGE_SIZE = 1000;

/** What {@link collectReport} reads and how. */
export interface CollectReportOptions {
  readonly store: SqliteStore;
  readonly policy: Policy;
  readonly window: ReportWindow;
  /** The report time. */
  readonly now: Date;
  /** Shown in the report's heading. */
  readonly sources: { readonly database: string; readonly policy: string };
  /** The audit key's public half: checkpoint signatures are verified too. */
  readonly auditKey?: KeyObject | undefined;
}

function facts(record: CertificateRecord): CertificateFacts {
  return { serial: record.serial, spiffeId: record.spiffeId, profile: record.profile, notBefore: record.notBefore, notAfter: record.notAfter, issuedAt: record.issuedAt, revokedAt: record.revokedAt };
}

/** The window's entries after `afterSeq` (those the verifier did not reach). */
async function remainingEntries(tx: StoreTransaction, builder: ReportBuilder, window: ReportWindow, afterSeq: number): Promise<void> {
  let token = '';
  do {
    const page = await tx.queryAudit({ since: window.from, until: window.to }, PAGE_SIZE, token);
    for (const entry of page.items) if (entry.seq > afterSeq) builder.addEntry(entry);
    // Newest first: once a page reaches back to what the verifier read, the rest was read too.
    if ((page.items.at(-1)?.seq ?? 0) <= afterSeq) break;
    token = page.nextPageToken;
  } while (token !== '');
}

async function readState(tx: StoreTransaction, builder: ReportBuilder, window: ReportWindow): Promise<number> {
  // Newest issued first: stop at the first certificate issued before the window.
  let token = '';
  issued: do {
    const page = await tx.listCertificates({}, PAGE_SIZE, token);
    for (const certificate of page.items) {
      if (certificate.issuedAt.getTime() < window.from.getTime()) break issued;
      builder.addIssuedCertificate(facts(certificate));
    }
    token = page.nextPageToken;
  } while (token !== '');

  token = '';
  do {
    const page = await tx.listCertificates({ validAt: window.asOf }, PAGE_SIZE, token);
    for (const certificate of page.items) builder.addLiveCertificate(facts(certificate));
    token = page.nextPageToken;
  } while (token !== '');

  for (const rotationId of builder.rotationIds) {
    const rotation = await tx.getRotation(rotationId);
    if (rotation !== null) builder.addRotation(rotation, await tx.listRotationTargets(rotationId));
  }
  return tx.countOutstandingJoinTokens(window.asOf);
}

/**
 * The report of `options.window`.
 * @throws BrokerError from the store (`store.closed`, `store.busy`, …)
 */
export async function collectReport(options: CollectReportOptions): Promise<MetricsReport> {
  const { store, window } = options;
  const builder = new ReportBuilder({ window, now: options.now, policy: options.policy, sources: options.sources });
  let lastSeq = 0;
  function* observed(entries: Iterable<AuditEntry>): Generator<AuditEntry> {
    for (const entry of entries) {
      lastSeq = entry.seq;
      builder.addEntry(entry);
      yield entry;
    }
  }
  const snapshot = await store.openAuditSnapshot();
  let verification: AuditVerification;
  try {
    verification = verifyAuditLog(observed(snapshot.entries), snapshot.checkpoints, options.auditKey === undefined ? {} : { publicKey: options.auditKey });
  } finally {
    snapshot.close();
  }
  const fedUpTo = lastSeq;
  const outstandingJoinTokens = await store.transaction(async (tx) => {
    if (!verification.ok) await remainingEntries(tx, builder, window, fedUpTo);
    return readState(tx, builder, window);
  });
  return builder.build({ verification, outstandingJoinTokens });
}
