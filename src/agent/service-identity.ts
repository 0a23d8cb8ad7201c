/**
 * A service's current credentials: its private key (made here, never sent), its certificate,
 * the issuing chain and the roots to trust. Prints and serialises without the key, so an
 * identity that slips into a log line leaks nothing secret.
 */
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { inspect } from 'node:util';
import { BrokerError } from '../core/index.js';

/** What Enroll and Renew return (CertificateResponse in proto/credbroker/v1/types.proto). */
export interface IssuedCertificate {
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly trustBundlePem: string;
  /** Lowercase hex. */
  readonly serial: string;
  readonly spiffeId: string;
  readonly notBeforeUnix: number;
  readonly notAfterUnix: number;
}

/** The PEM texts an identity is made of. */
export interface IdentityPems {
  readonly privateKeyPem: string;
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly trustBundlePem: string;
}

/** A key, its certificate, the chain and the trust bundle. Immutable: rotation makes a new one. */
export class ServiceIdentity {
  readonly #privateKeyPem: string;
  /** The leaf certificate (PEM). */
  readonly certificatePem: string;
  /** The intermediates, leaf-most first (PEM). */
  readonly chainPem: string;
  /** The roots that authenticate peers and the broker (PEM). */
  readonly trustBundlePem: string;
  /** Serial of the leaf, lowercase hex. */
  readonly serial: string;
  readonly spiffeId: string;
  readonly notBefore: Date;
  readonly notAfter: Date;

  private constructor(privateKeyPem: string, certificate: Omit<IssuedCertificate, 'notBeforeUnix' | 'notAfterUnix'> & { notBefore: Date; notAfter: Date }) {
    this.#privateKeyPem = privateKeyPem;
    this.certificatePem = certificate.certificatePem;
    this.chainPem = certificate.chainPem;
    this.trustBundlePem = certificate.trustBundlePem;
    this.serial = certificate.serial;
    this.spiffeId = certificate.spiffeId;
    this.notBefore = certificate.notBefore;
    this.notAfter = certificate.notAfter;
    Object.freeze(this);
  }

  /** An identity from the broker's reply and the key whose CSR it answered. */
  static fromIssued(privateKeyPem: string, issued: IssuedCertificate): ServiceIdentity {
    return new ServiceIdentity(privateKeyPem, {
      ...issued,
      serial: issued.serial.toLowerCase(),
      notBefore: new Date(issued.notBeforeUnix * 1000),
      notAfter: new Date(issued.notAfterUnix * 1000),
    });
  }

  /**
   * An identity from PEM texts (e.g. files an earlier run wrote). Checks that the key belongs to
   * the certificate and reads serial, SPIFFE ID and validity from the certificate.
   * @throws BrokerError invalid `agent.identity` saying what does not fit (never quoting PEM)
   */
  static fromPems(pems: IdentityPems): ServiceIdentity {
    const problem = (what: string, cause?: unknown): BrokerError =>
      new BrokerError('invalid', { code: 'agent.identity', publicMessage: what, ...(cause === undefined ? {} : { cause }) });
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(pems.certificatePem);
    } catch (error) {
      throw problem('the certificate is not a PEM certificate', error);
    }
    let matches: boolean;
    try {
      matches = certificate.checkPrivateKey(createPrivateKey(pems.privateKeyPem));
    } catch (error) {
      throw problem('the private key cannot be read (expected PKCS#8 PEM)', error);
    }
    if (!matches) throw problem('the private key does not belong to the certificate');
    const spiffeId = /(?:^|, )URI:(spiffe:\/\/[^,\s]+)/.exec(certificate.subjectAltName ?? '')?.[1];
    if (spiffeId === undefined) throw problem('the certificate carries no SPIFFE ID (URI SAN)');
    return new ServiceIdentity(pems.privateKeyPem, {
      certificatePem: pems.certificatePem,
      chainPem: pems.chainPem,
      trustBundlePem: pems.trustBundlePem,
      serial: certificate.serialNumber.toLowerCase(),
      spiffeId,
      notBefore: new Date(certificate.validFrom),
      notAfter: new Date(certificate.validTo),
    });
  }

  /** The private key, PKCS#8 PEM: for TLS in this process or the 0600 key file only. Never log it. */
  privateKeyPem(): string {
    return this.#privateKeyPem;
  }

  /** Leaf then intermediates: what to present in a TLS handshake. */
  get certificateChainPem(): string {
    return joinPem(this.certificatePem, this.chainPem);
  }

  /** True while `now` lies inside the certificate's validity. */
  isValidAt(now: Date): boolean {
    const ms = now.getTime();
    return ms >= this.notBefore.getTime() && ms < this.notAfter.getTime();
  }

  /** The same key and certificate with another trust bundle. */
  withTrustBundle(trustBundlePem: string): ServiceIdentity {
    return new ServiceIdentity(this.#privateKeyPem, { ...this.#fields(), trustBundlePem });
  }

  /** Safe to log: serial, SPIFFE ID, validity. */
  toJSON(): Record<string, string> {
    return { serial: this.serial, spiffeId: this.spiffeId, notBefore: this.notBefore.toISOString(), notAfter: this.notAfter.toISOString() };
  }

  toString(): string {
    return `ServiceIdentity(${this.spiffeId}, serial ${this.serial}, until ${this.notAfter.toISOString()})`;
  }

  [inspect.custom](): string {
    return this.toString();
  }

  #fields(): Omit<IssuedCertificate, 'notBeforeUnix' | 'notAfterUnix'> & { notBefore: Date; notAfter: Date } {
    return {
      certificatePem: this.certificatePem,
      chainPem: this.chainPem,
      trustBundlePem: this.trustBundlePem,
      serial: this.serial,
      spiffeId: this.spiffeId,
      notBefore: this.notBefore,
      notAfter: this.notAfter,
    };
  }
}

/** Concatenates PEM texts, one newline between them. */
export function joinPem(...pems: readonly string[]): string {
  return pems
    .map((pem) => pem.trim())
    .filter((pem) => pem !== '')
    .map((pem) => `${pem}\n`)
    .join('');
}
