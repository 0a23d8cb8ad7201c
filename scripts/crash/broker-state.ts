/**
 * A broker state directory for runs against a `credbroker serve` child: the e2e harness's
 * ceremony on the run's temp SoftHSM token, policy and config (test/e2e/harness.ts), plus an
 * operator certificate enrolled while the harness's in-process broker runs. That broker is then
 * stopped, so the child is alone with the store and the token.
 */
import { join } from 'node:path';
import { connectBroker, newKeyAndCsr, unary, type BrokerClients } from '../../src/agent/index.js';
import { OPERATOR, startE2eBroker, type ClientIdentity, type E2eBroker } from '../../test/e2e/harness.js';

/** A prepared, stopped broker state. */
export interface BrokerState {
  readonly dir: string;
  readonly configPath: string;
  readonly dbPath: string;
  /** The audit key's public half (PEM file), for `credbroker audit verify --audit-key`. */
  readonly auditKeyPath: string;
  readonly rootPem: string;
  /** An operator's key and certificate (CreateJoinToken, Issue, Revoke). */
  readonly operator: ClientIdentity;
  /** Removes the directory. */
  remove(): Promise<void>;
}

/**
 * Makes the state directory and the operator identity.
 * @param enrollBurst Enroll's per-address burst in the config (the runs enroll from one address)
 */
export async function prepareBrokerState(enrollBurst = 10_000): Promise<BrokerState> {
  const e2e: E2eBroker = await startE2eBroker({ enrollBurst });
  try {
    const operator = await e2e.enroll(await e2e.bootstrapToken(OPERATOR));
    await e2e.broker.stop();
    return {
      dir: e2e.dir,
      configPath: e2e.configPath,
      dbPath: join(e2e.dir, 'broker.db'),
      auditKeyPath: join(e2e.dir, 'audit-key.pem'),
      rootPem: e2e.rootPem,
      operator,
      remove: () => e2e.close(),
    };
  } catch (error) {
    await e2e.close().catch(() => undefined);
    throw error;
  }
}

/** Clients of the broker at `address`, presenting `identity` (none: enrollment only). */
export function clientsFor(address: string, rootPem: string, identity: ClientIdentity | null): BrokerClients {
  return connectBroker({
    address,
    trustBundlePem: rootPem,
    serverName: 'localhost',
    ...(identity === null ? {} : { clientKeyPem: identity.keyPem, clientCertificateChainPem: identity.certificatePem + identity.chainPem }),
  });
}

/** A certificate reply of Enroll, Renew or Issue. */
interface CertificateReply {
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly serial: string;
}

/** Calls a certificate RPC with a fresh P-256 key and returns the key with the reply. */
export async function withFreshKey(call: (csr: Buffer) => Promise<CertificateReply>): Promise<ClientIdentity> {
  const { keyPem, csrDer } = await newKeyAndCsr();
  const reply = await call(Buffer.from(csrDer));
  return { keyPem, certificatePem: reply.certificatePem, chainPem: reply.chainPem, serial: reply.serial };
}

/** Enroll with a join token (anonymous clients). */
export function enrollWith(clients: BrokerClients, joinToken: string, ttlSeconds = 0): Promise<ClientIdentity> {
  return withFreshKey((csr) => unary<CertificateReply>(clients.enrollment, 'Enroll', { joinToken, csr, ttlSeconds }));
}

/** Renew with a new key (clients presenting the identity to renew). */
export function renewWith(clients: BrokerClients): Promise<ClientIdentity> {
  return withFreshKey((csr) => unary<CertificateReply>(clients.certificates, 'Renew', { csr }));
}
