/**
 * What each RPC decides, independent of gRPC: authorization from the verified peer and the
 * policy, the work, and one store transaction per decision holding the state change and its
 * audit entry. Denials are audited too, in a transaction of their own, and change nothing else.
 *
 * HSM signing happens before the transaction: a certificate is recorded only once it exists,
 * and one signed but not recorded (a lost race for a join token) is never returned.
 */
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { BrokerError, REVOCATION_REASONS, type Clock, type Logger, type RandomSource, type Signer } from '../core/index.js';
import { buildCrl, checkCsr, crlToPem, issueLeafCertificate, parseSpiffeId, spkiOfPublicKey, type CheckedCsr } from '../pki/index.js';
import { clampTtl, type IdentityPolicy, type PolicyHolder } from '../policy/index.js';
import type { AuditLog } from '../audit/index.js';
import type { AuditEntry, CertificateRecord, Store, StoreTransaction, StoredRevocationReason } from '../store/index.js';
import { mintJoinToken, parseJoinToken } from './join-token.js';
import { Decisions, requirePeer, type Caller } from './decisions.js';

export type { Caller } from './decisions.js';


/** The CA that issues leaves: intermediate certificate and its HSM signer, and the roots. */
export interface IssuingCa {
  readonly roots: readonly x509.X509Certificate[];
  readonly intermediate: x509.X509Certificate;
  readonly signer: Signer;
  readonly trustDomain: string;
  /**
   * Every intermediate peers must trust now, the issuing one first: with a roll-over under way
   * also the prepared and the retiring ones (src/server/intermediate-rollover.ts). Default: the
   * issuing one only.
   */
  readonly intermediates?: readonly x509.X509Certificate[];
  /**
   * Cross certificates between the old and the new root during a root renewal: those that
   * certify the key that signed `intermediate` follow it in every chain, all of them are in the
   * bundle's intermediates. Default none.
   */
  readonly crossCertificates?: readonly x509.X509Certificate[];
}

/** A certificate as returned to its holder. */
export interface IssuedCertificate {
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly trustBundlePem: string;
  readonly serial: string;
  readonly spiffeId: string;
  readonly notBeforeUnix: number;
  readonly notAfterUnix: number;
  readonly requestId: string;
}

/** What a Renew's bookkeeping inside its transaction did, acted on after the commit. */
export interface RenewalEffects {
  /** Serials it revoked: reported to `onRevoked`. */
  readonly revoked: readonly string[];
  /** Runs after the commit only (e.g. metrics of the rotation targets the renewal completed). */
  readonly afterCommit?: () => void;
}

/** Dependencies of {@link BrokerService}. */
export interface BrokerServiceOptions {
  readonly store: Store;
  readonly audit: AuditLog;
  readonly policy: PolicyHolder;
  readonly ca: () => IssuingCa;
  readonly clock: Clock;
  readonly random: RandomSource;
  readonly logger?: Logger;
  /** Called after a revocation commits, so the transport refuses the certificate at once. */
  readonly onRevoked?: (serial: string) => void;
  /** CRL validity (default 24 h); a new CRL is built when a revocation happens or half of it passed. */
  readonly crlValidityMs?: number;
  /** Shared with the other services (default: one of its own over store, audit and policy). */
  readonly decisions?: Decisions;
  /**
   * Called inside each Renew's transaction after the new certificate is recorded (forced
   * rotation bookkeeping); its effects are acted on after the commit.
   */
  readonly onRenewed?: (tx: StoreTransaction, caller: Caller, oldSerial: string, renewed: CertificateRecord) => Promise<RenewalEffects>;
  /** Called after the commit of every certificate Enroll, Renew or Issue recorded (metrics); must not throw. */
  readonly onIssued?: (certificate: CertificateRecord) => void;
}

/** Page size bounds for listings. */
const DEFAULT_PAGE_SIZE = 100;
const MAX_PAGE_SIZE = 1000;


/** The broker's decisions. */
export class BrokerService {
  readonly #decisions: Decisions;
  readonly #policy: PolicyHolder;
  readonly #ca: () => IssuingCa;
  readonly #clock: Clock;
  readonly #random: RandomSource;
  readonly #onRevoked: (serial: string) => void;
  readonly #onRenewed: NonNullable<BrokerServiceOptions['onRenewed']>;
  readonly #onIssued: (certificate: CertificateRecord) => void;
  readonly #crlValidityMs: number;
  #crl: { der: Uint8Array; pem: string; number: bigint; thisUpdate: Date; nextUpdate: Date } | null = null;

  constructor(options: BrokerServiceOptions) {
    this.#decisions = options.decisions ?? new Decisions({ store: options.store, audit: options.audit, policy: options.policy, clock: options.clock, ...(options.logger === undefined ? {} : { logger: options.logger }) });
    this.#policy = options.policy;
    this.#ca = options.ca;
    this.#clock = options.clock;
    this.#random = options.random;
    this.#onRevoked = options.onRevoked ?? (() => undefined);
    this.#onRenewed = options.onRenewed ?? (() => Promise.resolve({ revoked: [] }));
    this.#onIssued = options.onIssued ?? (() => undefined);
    this.#crlValidityMs = options.crlValidityMs ?? 86_400_000;
  }

  /** Forgets the cached CRL (after a revocation made elsewhere, e.g. a forced rotation). */
  forgetCrl(): void {
    this.#crl = null;
  }

  /** Trust bundle: roots and every intermediate not retired (issuing, prepared, retiring). */
  trustBundle(): { rootsPem: string; intermediatesPem: string; trustDomain: string } {
    const ca = this.#ca();
    const pems = caPems(ca);
    return { rootsPem: pems.roots, intermediatesPem: pems.intermediates, trustDomain: ca.trustDomain };
  }

  /** Enroll: a join token and a CSR for a first certificate. */
  enroll(caller: Caller, request: { joinToken: string; csr: Uint8Array; ttlSeconds: number }): Promise<IssuedCertificate> {
    return this.#decisions.decide(caller, 'Enroll', '', async (record) => {
      const { id, hash } = parseJoinToken(request.joinToken);
      record.subject = id;
      const now = this.#clock.now();
      const token = await this.#decisions.store.transaction((tx) => tx.getJoinTokenByHash(hash));
      if (token?.id !== id) throw unauthenticated('join_token.unknown', 'the join token is unknown to this broker');
      record.subject = token.spiffeId;
      record.details.tokenId = token.id;
      if (token.usedAt !== null) throw unauthenticated('join_token.used', 'the join token was already used; join tokens are single-use: ask an operator for a new one');
      if (now.getTime() >= token.expiresAt.getTime()) {
        throw unauthenticated('join_token.expired', `the join token expired at ${token.expiresAt.toISOString()}; ask an operator for a new one`);
      }
      const identity = this.#identity(token.spiffeId);
      const issued = await this.#issue(identity, token.spiffeId, request.csr, request.ttlSeconds, now);
      record.details.serial = issued.record.serial;
      await this.#decisions.store.transaction(async (tx) => {
        if (!(await tx.redeemJoinToken(token.id, now, issued.record.serial))) {
          throw unauthenticated('join_token.used', 'the join token was already used; join tokens are single-use: ask an operator for a new one');
        }
        await tx.insertCertificate(issued.record);
        await this.#decisions.allowed(tx, caller, 'Enroll', token.spiffeId, { serial: issued.record.serial, tokenId: token.id, notAfter: issued.record.notAfter.toISOString() });
      });
      this.#onIssued(issued.record);
      return this.#reply(caller, issued);
    });
  }

  /** Renew: the caller's own identity, a new key. */
  renew(caller: Caller, request: { csr: Uint8Array; ttlSeconds: number }): Promise<IssuedCertificate> {
    return this.#decisions.decide(caller, 'Renew', '', async (record) => {
      const peer = requirePeer(caller);
      record.subject = peer.spiffeId;
      const now = this.#clock.now();
      const identity = this.#identity(peer.spiffeId);
      const csr = await checkCsr(request.csr);
      const spki = createHash('sha256').update(spkiOfPublicKey(csr.publicKey)).digest('hex');
      if (spki === peer.spkiSha256) {
        throw new BrokerError('invalid', { code: 'renew.same_key', publicMessage: 'the CSR carries the key of the current certificate: renewal needs a new key' });
      }
      const issued = await this.#issue(identity, peer.spiffeId, csr, request.ttlSeconds, now, peer.serial);
      record.details.serial = issued.record.serial;
      const effects = await this.#decisions.store.transaction(async (tx) => {
        const current = await tx.getCertificate(peer.serial);
        if (current?.revokedAt != null) throw unauthenticated('peer.revoked', `the client certificate (serial ${peer.serial}) is revoked; recovery needs a new join token`);
        await tx.insertCertificate(issued.record);
        await this.#decisions.allowed(tx, caller, 'Renew', peer.spiffeId, { serial: issued.record.serial, renewedFrom: peer.serial, notAfter: issued.record.notAfter.toISOString() });
        return this.#onRenewed(tx, caller, peer.serial, issued.record);
      });
      for (const serial of effects.revoked) this.#onRevoked(serial);
      if (effects.revoked.length > 0) this.#crl = null;
      this.#onIssued(issued.record);
      effects.afterCommit?.();
      return this.#reply(caller, issued);
    });
  }

  /** Issue: an operator certifies any identity policy knows. */
  issue(caller: Caller, request: { csr: Uint8Array; spiffeId: string; ttlSeconds: number }): Promise<IssuedCertificate> {
    return this.#decisions.decide(caller, 'Issue', request.spiffeId, async (record) => {
      this.#decisions.requireOperator(caller);
      const spiffeId = parseSpiffeId(request.spiffeId).toString();
      const identity = this.#identity(spiffeId);
      const now = this.#clock.now();
      const issued = await this.#issue(identity, spiffeId, request.csr, request.ttlSeconds, now);
      record.details.serial = issued.record.serial;
      await this.#decisions.store.transaction(async (tx) => {
        await tx.insertCertificate(issued.record);
        await this.#decisions.allowed(tx, caller, 'Issue', spiffeId, { serial: issued.record.serial, notAfter: issued.record.notAfter.toISOString() });
      });
      this.#onIssued(issued.record);
      return this.#reply(caller, issued);
    });
  }

  /** Revoke: operators, or the owner for its own certificate. */
  revoke(caller: Caller, request: { serial: string; reason: StoredRevocationReason }): Promise<{ serial: string; revokedAtUnix: number; requestId: string }> {
    return this.#decisions.decide(caller, 'Revoke', request.serial, async (record) => {
      const peer = requirePeer(caller);
      const serial = normalizeSerial(request.serial);
      record.subject = serial;
      record.details.reason = request.reason;
      if (!REVOCATION_REASONS.includes(request.reason)) throw invalid('revoke.reason', 'unknown revocation reason');
      const now = this.#clock.now();
      const operator = this.#decisions.isOperator(peer);
      await this.#decisions.store.transaction(async (tx) => {
        const certificate = await tx.getCertificate(serial);
        if (certificate === null) throw new BrokerError('not_found', { code: 'revoke.unknown_serial', publicMessage: `no certificate with serial ${serial} was issued by this broker` });
        if (!operator && certificate.spiffeId !== peer.spiffeId) {
          throw new BrokerError('denied', { code: 'revoke.not_owner', publicMessage: 'a service may revoke only its own certificates' });
        }
        if (!(await tx.revokeCertificate(serial, now, request.reason))) {
          throw new BrokerError('conflict', { code: 'revoke.already_revoked', publicMessage: `certificate ${serial} is already revoked` });
        }
        await this.#decisions.allowed(tx, caller, 'Revoke', serial, { reason: request.reason, spiffeId: certificate.spiffeId });
      });
      this.#crl = null;
      this.#onRevoked(serial);
      return { serial, revokedAtUnix: Math.floor(now.getTime() / 1000), requestId: caller.requestId };
    });
  }

  /** One certificate (operators). */
  getCertificate(caller: Caller, request: { serial: string }): Promise<CertificateRecord> {
    return this.#decisions.decide(caller, 'GetCertificate', request.serial, async () => {
      this.#decisions.requireOperator(caller);
      const serial = normalizeSerial(request.serial);
      const certificate = await this.#decisions.store.transaction(async (tx) => {
        const found = await tx.getCertificate(serial);
        if (found !== null) await this.#decisions.allowed(tx, caller, 'GetCertificate', serial, { spiffeId: found.spiffeId });
        return found;
      });
      if (certificate === null) throw new BrokerError('not_found', { code: 'certificate.unknown_serial', publicMessage: `no certificate with serial ${serial}` });
      return certificate;
    });
  }

  /** Certificates, newest first (operators). */
  listCertificates(
    caller: Caller,
    request: { spiffeId: string; profile: string; validOnly: boolean; pageSize: number; pageToken: string },
  ): Promise<{ items: readonly CertificateRecord[]; nextPageToken: string }> {
    return this.#decisions.decide(caller, 'ListCertificates', request.spiffeId, async () => {
      this.#decisions.requireOperator(caller);
      const profile = request.profile === '' ? undefined : request.profile;
      if (profile !== undefined && profile !== 'service' && profile !== 'operator' && profile !== 'server') {
        throw invalid('list.profile', `unknown profile "${profile}": use service, operator or server`);
      }
      const pageSize = pageSizeOf(request.pageSize);
      return this.#decisions.store.transaction(async (tx) => {
        const page = await tx.listCertificates(
          {
            ...(request.spiffeId === '' ? {} : { spiffeId: request.spiffeId }),
            ...(profile === undefined ? {} : { profile }),
            ...(request.validOnly ? { validAt: this.#clock.now() } : {}),
          },
          pageSize,
          request.pageToken,
        );
        await this.#decisions.allowed(tx, caller, 'ListCertificates', request.spiffeId, { returned: page.items.length });
        return page;
      });
    });
  }

  /** The intermediate's CRL, rebuilt after revocations or when half its validity passed. */
  async crl(caller: Caller): Promise<{ der: Uint8Array; pem: string; number: string; thisUpdateUnix: number; nextUpdateUnix: number }> {
    requirePeer(caller);
    const now = this.#clock.now();
    let crl = this.#crl;
    if (crl === null || now.getTime() > crl.thisUpdate.getTime() + (crl.nextUpdate.getTime() - crl.thisUpdate.getTime()) / 2) {
      const ca = this.#ca();
      const { revoked, number } = await this.#decisions.store.transaction(async (tx) => ({
        revoked: await tx.listRevokedUnexpired(now),
        number: await tx.nextCounter('crl_number'),
      }));
      const nextUpdate = new Date(now.getTime() + this.#crlValidityMs);
      const built = await buildCrl({
        issuerSigner: ca.signer,
        issuerCertificate: ca.intermediate,
        crlNumber: number,
        thisUpdate: now,
        nextUpdate,
        entries: revoked.map((c) => ({ serialNumber: c.serial, revokedAt: c.revokedAt ?? now, reason: (c.revocationReason ?? 'unspecified') })),
      });
      crl = { der: new Uint8Array(built.rawData), pem: crlToPem(built), number, thisUpdate: now, nextUpdate };
      this.#crl = crl;
    }
    return {
      der: crl.der,
      pem: crl.pem,
      number: crl.number.toString(),
      thisUpdateUnix: Math.floor(crl.thisUpdate.getTime() / 1000),
      nextUpdateUnix: Math.floor(crl.nextUpdate.getTime() / 1000),
    };
  }

  /** CreateJoinToken (operators): the token is in the reply only. */
  createJoinToken(caller: Caller, request: { spiffeId: string; ttlSeconds: number }): Promise<{ joinToken: string; tokenId: string; spiffeId: string; expiresAtUnix: number; requestId: string }> {
    return this.#decisions.decide(caller, 'CreateJoinToken', request.spiffeId, async (record) => {
      const peer = this.#decisions.requireOperator(caller);
      const spiffeId = parseSpiffeId(request.spiffeId).toString();
      record.subject = spiffeId;
      this.#identity(spiffeId);
      const policy = this.#policy.current;
      const ttlMs = clampTtl(request.ttlSeconds === 0 ? undefined : request.ttlSeconds * 1000, policy.joinTokens);
      const now = this.#clock.now();
      const minted = mintJoinToken(this.#random);
      const expiresAt = new Date(now.getTime() + ttlMs);
      await this.#decisions.store.transaction(async (tx) => {
        await tx.insertJoinToken({ id: minted.id, hash: minted.hash, spiffeId, createdBy: peer.spiffeId, createdAt: now, expiresAt, usedAt: null, usedForSerial: null });
        await this.#decisions.allowed(tx, caller, 'CreateJoinToken', spiffeId, { tokenId: minted.id, ttlSeconds: Math.round(ttlMs / 1000) });
      });
      return { joinToken: minted.token, tokenId: minted.id, spiffeId, expiresAtUnix: Math.floor(expiresAt.getTime() / 1000), requestId: caller.requestId };
    });
  }

  /** QueryAudit (operators). */
  queryAudit(
    caller: Caller,
    request: { actor: string; action: string; outcome: string; subject: string; sinceUnix: number; untilUnix: number; pageSize: number; pageToken: string },
  ): Promise<{ items: readonly AuditEntry[]; nextPageToken: string }> {
    return this.#decisions.decide(caller, 'QueryAudit', '', async () => {
      this.#decisions.requireOperator(caller);
      if (request.outcome !== '' && request.outcome !== 'allowed' && request.outcome !== 'denied' && request.outcome !== 'failed') {
        throw invalid('audit.outcome', `unknown outcome "${request.outcome}": use allowed, denied or failed`);
      }
      return this.#decisions.store.transaction(async (tx) => {
        const page = await tx.queryAudit(
          {
            ...(request.actor === '' ? {} : { actor: request.actor }),
            ...(request.action === '' ? {} : { action: request.action }),
            ...(request.outcome === '' ? {} : { outcome: request.outcome as AuditEntry['outcome'] }),
            ...(request.subject === '' ? {} : { subject: request.subject }),
            ...(request.sinceUnix === 0 ? {} : { since: new Date(request.sinceUnix * 1000) }),
            ...(request.untilUnix === 0 ? {} : { until: new Date(request.untilUnix * 1000) }),
          },
          pageSizeOf(request.pageSize),
          request.pageToken,
        );
        await this.#decisions.allowed(tx, caller, 'QueryAudit', '', { returned: page.items.length });
        return page;
      });
    });
  }

  /** ReloadPolicy (operators): a bad file keeps the current policy. */
  reloadPolicy(caller: Caller): Promise<{ reloaded: boolean; policySha256: string; error: string }> {
    return this.#decisions.decide(caller, 'ReloadPolicy', '', async () => {
      this.#decisions.requireOperator(caller);
      const result = this.#policy.reload();
      const policySha256 = this.#policy.current.sha256;
      await this.#decisions.store.transaction(async (tx) => {
        await this.#decisions.append(tx, this.#decisions.entry(caller, 'ReloadPolicy', result.ok ? 'allowed' : 'failed', this.#policy.current.source, result.ok ? '' : 'policy.invalid', { policySha256 }));
      });
      return { reloaded: result.ok, policySha256, error: result.ok ? '' : result.error.publicMessage };
    });
  }

  /** Builds and signs a leaf (outside any transaction). */
  async #issue(identity: IdentityPolicy, spiffeId: string, csrInput: Uint8Array | CheckedCsr, ttlSeconds: number, now: Date, renewedFrom: string | null = null): Promise<IssuedLeaf> {
    const ca = this.#ca();
    const csr = csrInput instanceof Uint8Array ? await checkCsr(csrInput) : csrInput;
    const ttlMs = clampTtl(ttlSeconds === 0 ? undefined : ttlSeconds * 1000, identity.certificates);
    const certificate = await issueLeafCertificate({
      issuerSigner: ca.signer,
      issuerCertificate: ca.intermediate,
      csr,
      spiffeId: parseSpiffeId(spiffeId),
      profile: identity.role,
      allowedDnsNames: identity.dnsNames,
      allowedIpAddresses: identity.ipAddresses,
      ttlMs,
      validityPolicy: { backdateMs: 60_000, defaultTtlMs: identity.certificates.defaultTtlMs, maxTtlMs: identity.certificates.maxTtlMs },
      now,
      random: this.#random,
    });
    const der = new Uint8Array(certificate.rawData);
    return {
      certificate,
      record: {
        serial: certificate.serialNumber.toLowerCase(),
        spiffeId,
        profile: identity.role,
        notBefore: certificate.notBefore,
        notAfter: certificate.notAfter,
        issuedAt: now,
        sha256: createHash('sha256').update(der).digest('hex'),
        spkiSha256: createHash('sha256').update(new Uint8Array(certificate.publicKey.rawData)).digest('hex'),
        issuerSerial: ca.intermediate.serialNumber.toLowerCase(),
        renewedFrom,
        der,
        revokedAt: null,
        revocationReason: null,
      },
      ca,
    };
  }

  /** The reply: the chain is that of the intermediate that signed (a roll-over may have happened since). */
  #reply(caller: Caller, issued: IssuedLeaf): IssuedCertificate {
    const { certificate, record, ca } = issued;
    return {
      certificatePem: `${certificate.toString('pem')}\n`,
      chainPem: caPems(ca).chain,
      trustBundlePem: caPems(ca).roots,
      serial: record.serial,
      spiffeId: record.spiffeId,
      notBeforeUnix: Math.floor(record.notBefore.getTime() / 1000),
      notAfterUnix: Math.floor(record.notAfter.getTime() / 1000),
      requestId: caller.requestId,
    };
  }

  /** The identity's policy, or PERMISSION_DENIED: nothing is granted by default. */
  #identity(spiffeId: string): IdentityPolicy {
    const identity = this.#policy.current.lookup(spiffeId);
    if (identity === null) {
      throw new BrokerError('denied', { code: 'policy.unknown_identity', publicMessage: `policy grants nothing to ${spiffeId}` });
    }
    return identity;
  }

  /** Audits a call the transport refused (no, bad, expired or revoked client certificate). */
  auditRefusal(caller: Caller, action: string, error: unknown): Promise<void> {
    return this.#decisions.auditFailure(caller, action, '', {}, error);
  }
}

function unauthenticated(code: string, message: string): BrokerError {
  return new BrokerError('unauthenticated', { code, publicMessage: message });
}

function invalid(code: string, message: string): BrokerError {
  return new BrokerError('invalid', { code, publicMessage: message });
}

function pageSizeOf(requested: number): number {
  if (requested === 0) return DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(requested) || requested < 1 || requested > MAX_PAGE_SIZE) throw invalid('page_size', `page_size must be 1 to ${MAX_PAGE_SIZE}, got ${requested}`);
  return requested;
}

function normalizeSerial(serial: string): string {
  const cleaned = serial.trim().toLowerCase().replace(/:/g, '');
  if (!/^[0-9a-f]{1,40}$/.test(cleaned)) throw invalid('serial', `"${serial.slice(0, 60)}" is not a serial number (hex)`);
  return cleaned;
}

/** A leaf signed by `ca`, not yet recorded. */
interface IssuedLeaf {
  readonly certificate: x509.X509Certificate;
  readonly record: CertificateRecord;
  readonly ca: IssuingCa;
}

/** The CA's PEM texts, encoded once per CA rather than on every reply. */
const PEMS = new WeakMap<IssuingCa, { roots: string; chain: string; intermediates: string }>();

function caPems(ca: IssuingCa): { roots: string; chain: string; intermediates: string } {
  let pems = PEMS.get(ca);
  if (pems === undefined) {
    pems = { roots: pemOf(ca.roots), chain: pemOf(chainOf(ca)), intermediates: pemOf([...(ca.intermediates ?? [ca.intermediate]), ...(ca.crossCertificates ?? [])]) };
    PEMS.set(ca, pems);
  }
  return pems;
}

function pemOf(certificates: readonly x509.X509Certificate[]): string {
  return certificates.map((c) => `${c.toString('pem')}\n`).join('');
}

/**
 * The issuing intermediate and the cross certificates of the key that signed it: a peer that
 * trusts the other root reaches it through them (root renewal).
 */
export function chainOf(ca: IssuingCa): x509.X509Certificate[] {
  const issuerKeyId = ca.intermediate.getExtension(x509.AuthorityKeyIdentifierExtension)?.keyId;
  const crosses = (ca.crossCertificates ?? []).filter(
    (cross) => cross.subject === ca.intermediate.issuer && issuerKeyId !== undefined && cross.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId === issuerKeyId,
  );
  return [ca.intermediate, ...crosses];
}
