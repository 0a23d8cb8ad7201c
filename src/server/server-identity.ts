/**
 * The broker's own TLS server certificate: a P-256 key made in memory at start (Node's TLS needs
 * the key in process; it is never written), certified by the broker's intermediate on the HSM
 * with the service profile, for the broker's SPIFFE ID and the DNS names and addresses clients
 * dial. Renewed at two thirds of its life by {@link ServerIdentityRenewer}.
 */
import { generateKeyPairSync } from 'node:crypto';
import { silentLogger, type Clock, type Logger, type RandomSource } from '../core/index.js';
import { issueLeafCertificate, parseSpiffeId, type CheckedCsr } from '../pki/index.js';
import { chainOf, type IssuingCa } from './broker-service.js';
import type { ServerIdentity } from './grpc-server.js';

/** What the server certificate names. */
export interface ServerIdentitySpec {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly ttlMs: number;
}

/** A server identity with its validity. */
export interface IssuedServerIdentity {
  readonly identity: ServerIdentity;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** The SPIFFE ID of the broker itself in a trust domain. */
export function brokerSpiffeId(trustDomain: string): string {
  return `spiffe://${trustDomain}/credbroker/broker`;
}

/** Issues a fresh server identity. */
export async function issueServerIdentity(ca: IssuingCa, spec: ServerIdentitySpec, now: Date, random: RandomSource): Promise<IssuedServerIdentity> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  // Our own key: no CSR to check, the names come from the broker's configuration.
  const csr: CheckedCsr = { publicKey, keyType: 'P-256', requestedDnsNames: spec.dnsNames, requestedIpAddresses: spec.ipAddresses, requestedUris: [], der: new Uint8Array() };
  const certificate = await issueLeafCertificate({
    issuerSigner: ca.signer,
    issuerCertificate: ca.intermediate,
    csr,
    spiffeId: parseSpiffeId(brokerSpiffeId(ca.trustDomain)),
    profile: 'service',
    allowedDnsNames: spec.dnsNames,
    allowedIpAddresses: spec.ipAddresses,
    ttlMs: spec.ttlMs,
    validityPolicy: { backdateMs: 60_000, defaultTtlMs: spec.ttlMs, maxTtlMs: spec.ttlMs },
    now,
    random,
  });
  const pem = (items: readonly { toString(format: 'pem'): string }[]): string => items.map((item) => `${item.toString('pem')}\n`).join('');
  return {
    identity: {
      privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
      certificateChainPem: pem([certificate, ...chainOf(ca)]),
      clientCaPem: pem([...ca.roots, ca.intermediate]),
    },
    serial: certificate.serialNumber.toLowerCase(),
    notBefore: certificate.notBefore,
    notAfter: certificate.notAfter,
  };
}

/**
 * Renews the server identity at two thirds of its life. `tick(now)` decides (tests call it with
 * a fake clock); `start()` runs it on an unref'd timer.
 */
export class ServerIdentityRenewer {
  #current: IssuedServerIdentity;
  #timer: NodeJS.Timeout | null = null;
  #renewing = false;

  constructor(
    initial: IssuedServerIdentity,
    private readonly renew: (now: Date) => Promise<IssuedServerIdentity>,
    private readonly apply: (identity: IssuedServerIdentity) => void,
    private readonly clock: Clock,
    private readonly logger: Logger = silentLogger,
  ) {
    this.#current = initial;
  }

  get current(): IssuedServerIdentity {
    return this.#current;
  }

  /** When the current identity is due for renewal. */
  get renewAt(): Date {
    const { notBefore, notAfter } = this.#current;
    return new Date(notBefore.getTime() + ((notAfter.getTime() - notBefore.getTime()) * 2) / 3);
  }

  /** Renews if due; returns true when it did. Failures are logged and retried on the next tick. */
  async tick(now: Date = this.clock.now()): Promise<boolean> {
    if (this.#renewing || now.getTime() < this.renewAt.getTime()) return false;
    this.#renewing = true;
    try {
      const next = await this.renew(now);
      this.#current = next;
      this.apply(next);
      this.logger.info({ serial: next.serial, notAfter: next.notAfter.toISOString() }, 'server certificate renewed');
      return true;
    } catch (error) {
      this.logger.error({ error: String(error) }, 'server certificate renewal failed; retrying');
      return false;
    } finally {
      this.#renewing = false;
    }
  }

  start(intervalMs = 60_000): void {
    this.#timer = setInterval(() => {
      void this.tick();
    }, intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    if (this.#timer !== null) clearInterval(this.#timer);
    this.#timer = null;
  }
}
