/**
 * What must hold in a broker's store after crashes (issue 7, item 2), checked on the SQLite file
 * (read-only) against what the clients saw:
 *
 * - `credbroker audit verify --audit-key` passes: every hash, the chain, every checkpoint signature;
 * - every stored certificate has exactly one allowed Enroll/Renew/Issue entry naming its serial,
 *   and every such entry has its certificate (no serial in two entries: no serial repeats);
 * - join tokens: used_at set ⇔ used_for_serial set, the serial is a stored certificate, and the
 *   token's one allowed Enroll entry names that serial; every token has its CreateJoinToken entry
 *   and every such entry its token;
 * - revoked certificates ⇔ allowed Revoke entries;
 * - every reply a client saw is durable: its serials stored, its revocations revoked, its join
 *   tokens stored (and redeemed for the serial it got), its access tokens audited.
 */
import Database from 'better-sqlite3';
import { runCli } from '../../test/helpers/cli.js';

/** What clients were told, collected by a load driver. */
export class ClientLedger {
  /** Serials of certificates returned by Enroll, Renew or Issue. */
  readonly serials: string[] = [];
  /** Join token id → the serial an Enroll with it returned ('' while not enrolled). */
  readonly joinTokens = new Map<string, string>();
  /** jti of access tokens returned by IssueToken. */
  readonly accessTokens: string[] = [];
  /** Serials a Revoke call confirmed. */
  readonly revoked: string[] = [];
}

/** The outcome of {@link checkStore}. */
export interface StoreCheck {
  /** Human-readable inconsistencies; empty when everything holds. */
  readonly problems: readonly string[];
  readonly figures: {
    readonly auditEntries: number;
    readonly checkpoints: number;
    readonly certificates: number;
    readonly revoked: number;
    readonly joinTokens: number;
    readonly joinTokensRedeemed: number;
    readonly accessTokensAudited: number;
    readonly clientSerials: number;
  };
}

interface AuditVerifyJson {
  ok: boolean;
  entries: number;
  checkpoints: number;
  signaturesChecked: boolean;
  firstBadSeq: number | null;
  reason: string | null;
}

/** Runs every check; never throws for an inconsistency (they are listed in `problems`). */
export async function checkStore(dbPath: string, auditKeyPath: string, ledger: ClientLedger): Promise<StoreCheck> {
  const problems: string[] = [];
  const problem = (text: string): void => {
    // Capped: a systematic fault would otherwise list thousands of lines.
    if (problems.length < 200) problems.push(text);
  };

  const verify = await runCli(['audit', 'verify', '--db', dbPath, '--audit-key', auditKeyPath, '--json']);
  let audit: AuditVerifyJson | null = null;
  try {
    audit = JSON.parse(verify.stdout) as AuditVerifyJson;
  } catch {
    problem(`audit verify printed no JSON (exit ${String(verify.status)}): ${verify.stderr.slice(0, 500)}`);
  }
  if (audit !== null) {
    if (verify.status !== 0 || !audit.ok) problem(`audit verify failed at entry ${String(audit.firstBadSeq)}: ${String(audit.reason)}`);
    if (!audit.signaturesChecked) problem('audit verify did not check the checkpoint signatures');
    if (audit.checkpoints < 1) problem('no audit checkpoint was written');
  }

  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const certificates = new Map(
      (db.prepare('SELECT serial, revoked_at AS revokedAt FROM certificates').all() as { serial: string; revokedAt: number | null }[]).map((row) => [row.serial, row]),
    );
    const issuing = db
      .prepare(
        "SELECT seq, action, json_extract(details, '$.serial') AS serial, json_extract(details, '$.tokenId') AS tokenId FROM audit_entries WHERE outcome = 'allowed' AND action IN ('Enroll', 'Renew', 'Issue') ORDER BY seq",
      )
      .all() as { seq: number; action: string; serial: string | null; tokenId: string | null }[];
    const auditedSerials = new Map<string, number>();
    for (const entry of issuing) {
      if (entry.serial === null) {
        problem(`audit entry ${entry.seq} (${entry.action} allowed) names no serial`);
        continue;
      }
      if (auditedSerials.has(entry.serial)) problem(`serial ${entry.serial} repeats: audit entries ${auditedSerials.get(entry.serial)} and ${entry.seq}`);
      auditedSerials.set(entry.serial, entry.seq);
      if (!certificates.has(entry.serial)) problem(`audit entry ${entry.seq} (${entry.action} allowed) names serial ${entry.serial}, which is not stored`);
    }
    for (const serial of certificates.keys()) {
      if (!auditedSerials.has(serial)) problem(`certificate ${serial} is stored without its Enroll/Renew/Issue audit entry`);
    }

    const tokens = db.prepare('SELECT id, used_at AS usedAt, used_for_serial AS usedForSerial FROM join_tokens').all() as { id: string; usedAt: number | null; usedForSerial: string | null }[];
    const enrollByToken = new Map<string, string[]>();
    for (const entry of issuing) {
      if (entry.action !== 'Enroll') continue;
      if (entry.tokenId === null) {
        problem(`Enroll audit entry ${entry.seq} names no join token`);
        continue;
      }
      enrollByToken.set(entry.tokenId, [...(enrollByToken.get(entry.tokenId) ?? []), entry.serial ?? '']);
    }
    const created = new Set(db.prepare("SELECT json_extract(details, '$.tokenId') FROM audit_entries WHERE action = 'CreateJoinToken' AND outcome = 'allowed'").pluck().all() as string[]);
    const tokenIds = new Set<string>();
    let redeemed = 0;
    for (const token of tokens) {
      tokenIds.add(token.id);
      if (!created.has(token.id)) problem(`join token ${token.id} is stored without its CreateJoinToken audit entry`);
      const enrolls = enrollByToken.get(token.id) ?? [];
      if ((token.usedAt === null) !== (token.usedForSerial === null)) {
        problem(`join token ${token.id} is half redeemed: used_at ${String(token.usedAt)}, used_for_serial ${String(token.usedForSerial)}`);
      }
      if (token.usedForSerial === null) {
        if (enrolls.length > 0) problem(`join token ${token.id} is unused but Enroll entries name it (serials ${enrolls.join(', ')})`);
        continue;
      }
      redeemed++;
      if (!certificates.has(token.usedForSerial)) problem(`join token ${token.id} was redeemed for serial ${token.usedForSerial}, which is not stored`);
      if (enrolls.length !== 1 || enrolls[0] !== token.usedForSerial) {
        problem(`join token ${token.id} was redeemed for ${token.usedForSerial} but its allowed Enroll entries name [${enrolls.join(', ')}]`);
      }
    }
    for (const id of created) if (!tokenIds.has(id)) problem(`CreateJoinToken entry names join token ${id}, which is not stored`);
    for (const id of enrollByToken.keys()) if (!tokenIds.has(id)) problem(`Enroll entries name join token ${id}, which is not stored`);

    const revokedAudited = new Set(db.prepare("SELECT subject FROM audit_entries WHERE action = 'Revoke' AND outcome = 'allowed'").pluck().all() as string[]);
    let revokedCount = 0;
    for (const certificate of certificates.values()) {
      if (certificate.revokedAt === null) continue;
      revokedCount++;
      if (!revokedAudited.has(certificate.serial)) problem(`certificate ${certificate.serial} is revoked without a Revoke audit entry`);
    }
    for (const serial of revokedAudited) if (certificates.get(serial)?.revokedAt == null) problem(`Revoke entry for ${serial}, which is not revoked in the store`);

    const accessTokens = new Set(db.prepare("SELECT json_extract(details, '$.tokenId') FROM audit_entries WHERE action = 'IssueToken' AND outcome = 'allowed'").pluck().all() as string[]);

    const seen = new Set<string>();
    for (const serial of ledger.serials) {
      if (seen.has(serial)) problem(`a client was given serial ${serial} twice`);
      seen.add(serial);
      if (!certificates.has(serial)) problem(`a client was given serial ${serial}, which is not stored (a reply that was not durable)`);
    }
    const tokensById = new Map(tokens.map((t) => [t.id, t]));
    for (const [id, serial] of ledger.joinTokens) {
      const token = tokensById.get(id);
      if (token === undefined) problem(`a client was given join token ${id}, which is not stored`);
      else if (serial !== '' && token.usedForSerial !== serial) problem(`a client enrolled ${serial} with join token ${id}, which the store has redeemed for ${String(token.usedForSerial)}`);
    }
    for (const jti of ledger.accessTokens) if (!accessTokens.has(jti)) problem(`a client was given access token ${jti}, which has no IssueToken audit entry`);
    for (const serial of ledger.revoked) if (certificates.get(serial)?.revokedAt == null) problem(`a client was told ${serial} is revoked; the store does not say so`);

    return {
      problems,
      figures: {
        auditEntries: audit?.entries ?? 0,
        checkpoints: audit?.checkpoints ?? 0,
        certificates: certificates.size,
        revoked: revokedCount,
        joinTokens: tokens.length,
        joinTokensRedeemed: redeemed,
        accessTokensAudited: accessTokens.size,
        clientSerials: ledger.serials.length,
      },
    };
  } finally {
    db.close();
  }
}
