/**
 * `credbroker audit`: offline verification and export of a broker's audit log, straight from its
 * SQLite file (read-only; a running broker may keep writing). For auditors and operators.
 */
import { Command } from 'commander';
import { formatDurationMs, type Clock } from '../core/index.js';
import { readAuditFromSqlite, verifyAuditSqlite } from '../audit/index.js';
import type { AuditCheckpoint, AuditEntry } from '../store/index.js';
import { readAuditPublicKey } from './audit-key.js';
import type { Output } from './output.js';

function entryJson(entry: AuditEntry): Record<string, unknown> {
  return {
    type: 'entry',
    seq: entry.seq,
    time: entry.time.toISOString(),
    requestId: entry.requestId,
    actor: entry.actor,
    action: entry.action,
    outcome: entry.outcome,
    subject: entry.subject,
    reason: entry.reason,
    details: entry.details,
    prevHash: entry.prevHash,
    hash: entry.hash,
  };
}

function checkpointJson(checkpoint: AuditCheckpoint): Record<string, unknown> {
  return {
    type: 'checkpoint',
    seq: checkpoint.seq,
    hash: checkpoint.hash,
    time: checkpoint.time.toISOString(),
    algorithm: checkpoint.algorithm,
    keySpkiSha256: checkpoint.keySpkiSha256,
    signature: checkpoint.signature,
  };
}

/**
 * Builds the `audit` command group.
 * @param clock for the age of the last checkpoint
 */
export function auditCommand(output: Output, clock: Clock): Command {
  const audit = new Command('audit').description('verify and export the hash-chained audit log of a broker database, offline');

  audit
    .command('verify')
    .description('check the audit log: every hash, the chain, and every checkpoint (signatures too with --audit-key); names the first bad entry')
    .requiredOption('--db <path>', 'the broker\'s SQLite database (opened read-only)')
    .option('--audit-key <pem>', 'the audit key\'s public half: a PUBLIC KEY or CERTIFICATE PEM file (recommended: without it signatures are not checked)')
    .option('--json', 'print JSON')
    .action(async (flags: { db: string; auditKey?: string; json?: boolean }) => {
      const publicKey = flags.auditKey === undefined ? undefined : readAuditPublicKey(flags.auditKey);
      const result = await verifyAuditSqlite(flags.db, publicKey === undefined ? {} : { publicKey });
      const now = clock.now();
      const ageMs = result.lastCheckpointTime === undefined ? undefined : Math.max(0, now.getTime() - result.lastCheckpointTime.getTime());
      if (flags.json === true) {
        output.json({
          ok: result.ok,
          entries: result.entries,
          headSeq: result.headSeq,
          checkpoints: result.checkpoints,
          signaturesChecked: result.signaturesChecked,
          keySpkiSha256: result.keySpkiSha256 ?? null,
          lastCheckpointSeq: result.lastCheckpointSeq ?? null,
          lastCheckpointTime: result.lastCheckpointTime?.toISOString() ?? null,
          lastCheckpointAgeMs: ageMs ?? null,
          firstBadSeq: result.firstBadSeq ?? null,
          reason: result.reason ?? null,
        });
      } else if (result.ok) {
        output.line(`audit log ok: ${result.entries} entries, hash chain intact`);
        if (result.lastCheckpointSeq === undefined || ageMs === undefined) {
          output.line('checkpoints: none yet (entries are covered by the hash chain only)');
        } else {
          output.line(
            `checkpoints: ${result.checkpoints}, last at entry ${result.lastCheckpointSeq} (${result.lastCheckpointTime?.toISOString() ?? '?'}, ${formatDurationMs(Math.floor(ageMs / 1000) * 1000)} ago); ${result.headSeq - result.lastCheckpointSeq} entries after it`,
          );
        }
        if (result.signaturesChecked) {
          output.line(`checkpoint signatures verified with the audit key (spki sha256 ${result.keySpkiSha256 ?? '?'})`);
        } else {
          output.error('warning: checkpoint signatures were NOT checked: pass --audit-key to check them against your audit key');
        }
      }
      if (!result.ok) {
        output.error(`audit log INVALID at entry ${result.firstBadSeq ?? '?'}: ${result.reason ?? 'unknown reason'}`);
        process.exitCode = 1;
      }
    });

  audit
    .command('export')
    .description('print the audit log as JSON lines: every checkpoint, then every entry in seq order')
    .requiredOption('--db <path>', 'the broker\'s SQLite database (opened read-only)')
    .action(async (flags: { db: string }) => {
      const snapshot = await readAuditFromSqlite(flags.db);
      try {
        for (const checkpoint of snapshot.checkpoints) output.line(JSON.stringify(checkpointJson(checkpoint)));
        for (const entry of snapshot.entries) output.line(JSON.stringify(entryJson(entry)));
      } finally {
        await snapshot.close();
      }
    });

  return audit;
}
