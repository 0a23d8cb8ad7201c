/**
 * Who is calling: the client certificate of the TLS connection, verified here on every call.
 *
 * The listener requests a client certificate but lets the handshake finish without one (so
 * Enroll works with a join token); every call that needs mTLS comes here. A certificate is
 * accepted only if it chains to this broker's CA for the client purpose, is within its
 * validity now, is not revoked, and carries exactly one SPIFFE ID of the broker's trust domain.
 * The expensive part (chain and signature) is cached per certificate; validity and revocation
 * are checked on every call.
 */
import { createHash } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { BrokerError } from '../core/index.js';
import { spiffeIdOfCertificate, verifyChain } from '../pki/index.js';

/** A verified caller. */
export interface PeerIdentity {
  readonly spiffeId: string;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 of the certificate's SubjectPublicKeyInfo, hex (renewals need a new key). */
  readonly spkiSha256: string;
  /** SHA-256 of the certificate's DER, hex: its `x5t#S256` (RFC 8705) for bound tokens. */
  readonly certificateSha256: string;
}

/** What the verifier needs to know about the CA and revocations. */
export interface PeerTrust {
  readonly roots: readonly x509.X509Certificate[];
  readonly intermediates: readonly x509.X509Certificate[];
  readonly trustDomain: string;
  isRevoked(serial: string): boolean;
}

const CACHE_LIMIT = 10_000;

/** Verifies client certificates against the broker's CA. */
export class PeerVerifier {
  readonly #trust: () => PeerTrust;
  readonly #cache = new Map<string, PeerIdentity>();

  /** @param trust read on every call, so a CA roll-over or new revocation applies at once */
  constructor(trust: () => PeerTrust) {
    this.#trust = trust;
  }

  /**
   * The caller's identity from its certificate (DER), or a BrokerError unauthenticated naming
   * what is wrong: none given, not from this CA, expired, not yet valid, revoked, other trust domain.
   */
  async verify(der: Uint8Array | undefined, now: Date): Promise<PeerIdentity> {
    if (der === undefined || der.length === 0) {
      throw unauthenticated('peer.no_certificate', 'this call needs a client certificate issued by this broker (mutual TLS): none was presented, or it does not chain to this broker\'s CA; enroll first with a join token');
    }
    const trust = this.#trust();
    const key = createHash('sha256').update(der).digest('hex');
    let identity = this.#cache.get(key);
    if (identity === undefined) {
      identity = await this.#verifyChain(der, key, trust, now);
      if (this.#cache.size >= CACHE_LIMIT) this.#cache.clear();
      this.#cache.set(key, identity);
    }
    if (now.getTime() > identity.notAfter.getTime()) {
      throw unauthenticated('peer.expired', `the client certificate (serial ${identity.serial}) expired at ${identity.notAfter.toISOString()}; an expired identity needs a new join token`);
    }
    if (now.getTime() < identity.notBefore.getTime()) {
      throw unauthenticated('peer.not_yet_valid', `the client certificate (serial ${identity.serial}) is not valid before ${identity.notBefore.toISOString()}`);
    }
    if (trust.isRevoked(identity.serial)) {
      throw unauthenticated('peer.revoked', `the client certificate (serial ${identity.serial}) is revoked; recovery needs a new join token`);
    }
    return identity;
  }

  /** Forgets cached verifications (after a CA change). */
  clear(): void {
    this.#cache.clear();
  }

  async #verifyChain(der: Uint8Array, certificateSha256: string, trust: PeerTrust, now: Date): Promise<PeerIdentity> {
    let leaf: x509.X509Certificate;
    try {
      leaf = new x509.X509Certificate(new Uint8Array(der));
    } catch {
      throw unauthenticated('peer.malformed', 'the client certificate cannot be parsed');
    }
    // During a roll-over several intermediates are trusted (active, prepared, retiring), and they
    // may share a subject name: each candidate is tried, the signature decides.
    const issuers = trust.intermediates.filter((candidate) => candidate.subject === leaf.issuer);
    if (issuers.length === 0) {
      throw unauthenticated('peer.unknown_ca', 'the client certificate was not issued by this broker\'s CA');
    }
    // Verified at the certificate's own notBefore: expiry is checked per call above, so a cached
    // verification stays right as time passes.
    const at = new Date(Math.max(leaf.notBefore.getTime(), Math.min(now.getTime(), leaf.notAfter.getTime())));
    let failure: unknown = null;
    // A renewed root keeps its predecessor's name (cross-certificate.ts): every root of the
    // issuer's name is tried as well.
    const paths = issuers.flatMap((issuer) => {
      const named = trust.roots.filter((candidate) => candidate.subject === issuer.issuer);
      return named.length === 0 ? [[leaf, issuer]] : named.map((root) => [leaf, issuer, root]);
    });
    for (const path of paths) {
      try {
        await verifyChain(path, trust.roots, at, { purpose: 'clientAuth' });
        failure = null;
        break;
      } catch (error) {
        failure = error;
      }
    }
    if (failure !== null) {
      const reason = failure instanceof BrokerError ? failure.publicMessage : 'chain verification failed';
      throw unauthenticated('peer.untrusted', `the client certificate does not chain to this broker's CA: ${reason}`);
    }
    let spiffeId: string;
    try {
      spiffeId = spiffeIdOfCertificate(leaf).toString();
    } catch {
      throw unauthenticated('peer.no_spiffe_id', 'the client certificate carries no single SPIFFE ID');
    }
    if (!spiffeId.startsWith(`spiffe://${trust.trustDomain}/`)) {
      throw unauthenticated('peer.trust_domain', `the client certificate's SPIFFE ID ${spiffeId} is not of trust domain ${trust.trustDomain}`);
    }
    return {
      spiffeId,
      serial: leaf.serialNumber.toLowerCase(),
      notBefore: leaf.notBefore,
      notAfter: leaf.notAfter,
      spkiSha256: createHash('sha256').update(new Uint8Array(leaf.publicKey.rawData)).digest('hex'),
      certificateSha256,
    };
  }
}

function unauthenticated(code: string, message: string): BrokerError {
  return new BrokerError('unauthenticated', { code, publicMessage: message });
}
