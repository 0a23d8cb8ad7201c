/**
 * `credbroker audit`: offline verification and export of a broker's audit log, straight from its
 * SQLite file (read-only; a running broker may keep writing), or from the store a broker config
 * names (`--store-config`: also the PostgreSQL database several brokers share, one chain for all
 * of them). For auditors and operators.
 */
import { Command } from 'commander';
import { BrokerError, formatDurationMs, type Clock } from '../core/index.js';
import { readAuditFromSqlite, verifyAuditLog, type AuditLogSnapshot, type AuditVerification } from '../audit/index.js';
import type { AuditCheckpoint, AuditEntry } from '../store/index.js';
import { readAuditPublicKey } from './audit-key.js';
import { readAuditOfBrokerConfig } from './audit-store.js';
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

/** The audit log named by exactly one of `--db` and `--store-config`. */
function openAuditSource(flags: { db?: string; storeConfig?: string }, clock: Clock): Promise<AuditLogSnapshot> {
  if ((flags.db === undefined) === (flags.storeConfig === undefined)) {
    throw new BrokerError('invalid', { code: 'cli.audit_source', publicMessage: 'give exactly one of --db <sqlite file> and --store-config <broker config>' });
  }
  return flags.db !== undefined ? readAuditFromSqlite(flags.db) : readAuditOfBrokerConfig(flags.storeConfig ?? '', clock);
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
    .option('--db <path>', 'the broker\'s SQLite database (opened read-only)')
    .option('--store-config <file>', 'instead of --db: a broker config file; its store is read (SQLite, or PostgreSQL in read-only sessions, the password from its secret source)')
    .option('--audit-key <pem>', 'the audit key\'s public half: a PUBLIC KEY or CERTIFICATE PEM file (recommended: without it signatures are not checked)')
    .option('--json', 'print JSON')
    .action(async (flags: { db?: string; storeConfig?: string; auditKey?: string; json?: boolean }) => {
      const publicKey = flags.auditKey === undefined ? undefined : readAuditPublicKey(flags.auditKey);
      const snapshot = await openAuditSource(flags, clock);
      let result: AuditVerification;
      try {
        result = verifyAuditLog(snapshot.entries, snapshot.checkpoints, publicKey === undefined ? {} : { publicKey });
      } finally {
        await snapshot.close();
      }
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
    .option('--db <path>', 'the broker\'s SQLite database (opened read-only)')
    .option('--store-config <file>', 'instead of --db: a broker config file; its store is read (SQLite or PostgreSQL)')
    .action(async (flags: { db?: string; storeConfig?: string }) => {
      const snapshot = await openAuditSource(flags, clock);
      try {
        for (const checkpoint of snapshot.checkpoints) output.line(JSON.stringify(checkpointJson(checkpoint)));
        for (const entry of snapshot.entries) output.line(JSON.stringify(entryJson(entry)));
      } finally {
        await snapshot.close();
      }
    });

  return audit;
}
