/**
 * The rotation benchmark's operator: Rotation/ForceRotate and GetRotation with the operator's
 * current certificate. The operator is itself a {@link FleetMember} (ServiceCredentials), so a
 * rotation of everything renews its certificate too; each call uses the identity in force, and a
 * call refused because the certificate it went out with was revoked meanwhile is sent again
 * with the new one.
 */
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { connectBroker, unary, type BrokerClients, type ServiceCredentials, type ServiceIdentity } from '../../src/agent/index.js';

/** RotationStatus (rotation.proto) as proto-loader decodes it. */
export interface RotationStatus {
  readonly rotationId: string;
  readonly selector: string;
  readonly reason: string;
  readonly requestedAtUnixMs: number;
  readonly targeted: number;
  readonly connected: number;
  readonly rotated: number;
  readonly pending: number;
  readonly revoked: number;
  readonly expired: number;
  readonly mttrP50Ms: number;
  readonly mttrP99Ms: number;
  readonly mttrMaxMs: number;
  readonly complete: boolean;
}

/** Attempts per call: the first, plus retries after the operator's own certificate was replaced. */
const ATTEMPTS = 3;
const CALL_DEADLINE_MS = 30_000;
/** Longest wait for the operator's renewed identity after a refusal. */
const REPLACEMENT_WAIT_MS = 5_000;

/** Rotation calls as the operator. */
export class RotationOperator {
  readonly #address: string;
  readonly #serverName: string;
  readonly #credentials: ServiceCredentials;
  #clients: { serial: string; clients: BrokerClients } | null = null;

  constructor(options: { address: string; serverName: string; credentials: ServiceCredentials }) {
    this.#address = options.address;
    this.#serverName = options.serverName;
    this.#credentials = options.credentials;
  }

  /** ForceRotate of a selector, or of everything. */
  forceRotate(request: { selector: string } | { all: true }): Promise<RotationStatus> {
    return this.#call('ForceRotate', request);
  }

  /** GetRotation. */
  getRotation(rotationId: string): Promise<RotationStatus> {
    return this.#call('GetRotation', { rotationId });
  }

  close(): void {
    this.#clients?.clients.close();
    this.#clients = null;
  }

  async #call(method: string, request: Record<string, unknown>): Promise<RotationStatus> {
    for (let attempt = 1; ; attempt++) {
      const identity = this.#credentials.identity;
      try {
        return await unary<RotationStatus>(this.#clientsOf(identity).rotation, method, request, CALL_DEADLINE_MS);
      } catch (error) {
        const code = (error as Partial<grpc.ServiceError>).code;
        if (attempt >= ATTEMPTS || code !== grpc.status.UNAUTHENTICATED) throw error;
        // Revoked as superseded between the renewal's commit and its reply: the new identity is on its way.
        if (!(await this.#replaced(identity.serial))) throw error;
      }
    }
  }

  /** True once the operator's identity is no longer `serial` (waits up to {@link REPLACEMENT_WAIT_MS}). */
  async #replaced(serial: string): Promise<boolean> {
    const events = this.#credentials.events;
    if (this.#credentials.identity.serial !== serial) return true;
    const controller = new AbortController();
    const timer = setTimeout(() => {
      controller.abort();
    }, REPLACEMENT_WAIT_MS);
    try {
      await once(events, 'identity', { signal: controller.signal });
    } catch {
      // timed out: answered below
    } finally {
      clearTimeout(timer);
    }
    return this.#credentials.identity.serial !== serial;
  }

  #clientsOf(identity: ServiceIdentity): BrokerClients {
    if (this.#clients?.serial === identity.serial) return this.#clients.clients;
    this.#clients?.clients.close();
    const clients = connectBroker({
      address: this.#address,
      serverName: this.#serverName,
      trustBundlePem: identity.trustBundlePem,
      clientKeyPem: identity.privateKeyPem(),
      clientCertificateChainPem: identity.certificateChainPem,
    });
    this.#clients = { serial: identity.serial, clients };
    return clients;
  }
}
