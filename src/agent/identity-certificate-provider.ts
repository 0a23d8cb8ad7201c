/**
 * A grpc-js certificate provider fed by {@link ServiceIdentity} updates: grpc-js servers and
 * channels built on it pick up each renewed key and certificate (and trust bundle) for their
 * next handshake, with no restart (the pattern of the broker's own server, src/server).
 */
import type * as grpc from '@grpc/grpc-js';
import type { ServiceIdentity } from './service-identity.js';

type CaListener = grpc.experimental.CaCertificateUpdateListener;
type IdentityListener = grpc.experimental.IdentityCertificateUpdateListener;

/** Both the CA (trust bundle) and the identity (key, certificate chain) of a service. */
export class IdentityCertificateProvider implements grpc.experimental.CertificateProvider {
  #identity: ServiceIdentity | null;
  readonly #caListeners = new Set<CaListener>();
  readonly #identityListeners = new Set<IdentityListener>();

  constructor(identity: ServiceIdentity | null = null) {
    this.#identity = identity;
  }

  /** Hands `identity` to every registered server and channel. */
  update(identity: ServiceIdentity): void {
    this.#identity = identity;
    for (const listener of this.#caListeners) listener(caUpdate(identity));
    for (const listener of this.#identityListeners) listener(identityUpdate(identity));
  }

  // grpc-js registers its watcher only after adding these listeners: answer on the next tick,
  // or the first update is lost (as src/server's provider does).
  addCaCertificateListener(listener: CaListener): void {
    this.#caListeners.add(listener);
    queueMicrotask(() => {
      if (this.#identity !== null && this.#caListeners.has(listener)) listener(caUpdate(this.#identity));
    });
  }

  removeCaCertificateListener(listener: CaListener): void {
    this.#caListeners.delete(listener);
  }

  addIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.add(listener);
    queueMicrotask(() => {
      if (this.#identity !== null && this.#identityListeners.has(listener)) listener(identityUpdate(this.#identity));
    });
  }

  removeIdentityCertificateListener(listener: IdentityListener): void {
    this.#identityListeners.delete(listener);
  }
}

function caUpdate(identity: ServiceIdentity): grpc.experimental.CaCertificateUpdate {
  return { caCertificate: Buffer.from(identity.trustBundlePem) };
}

function identityUpdate(identity: ServiceIdentity): grpc.experimental.IdentityCertificateUpdate {
  return { certificate: Buffer.from(identity.certificateChainPem), privateKey: Buffer.from(identity.privateKeyPem()) };
}
