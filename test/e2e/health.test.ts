/**
 * Health that means something: the HSM lost turns grpc.health.v1 NOT_SERVING and calls
 * UNAVAILABLE; the token's reconnection turns it SERVING again without a restart; an
 * intermediate about to expire is NOT_SERVING with the reason.
 */
import { expect } from 'chai';
import { X509Certificate } from 'node:crypto';
import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { protoPath } from 'grpc-health-check';
import { newKeyAndCsr, unary } from '../../src/agent/index.js';
import { IMPORT, grpcError, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';

type HealthClient = grpc.Client & Record<string, unknown>;

describe('e2e: health', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let health: HealthClient;
  let service: ClientIdentity;

  const status = async (name = ''): Promise<string> => (await unary<{ status: string }>(health, 'Check', { service: name })).status;
  const renew = async (): Promise<void> => {
    const { keyPem, csrDer } = await newKeyAndCsr();
    const reply = await unary<{ serial: string; certificatePem: string; chainPem: string }>(e2e.as(service).certificates, 'Renew', { csr: Buffer.from(csrDer) });
    service = { keyPem, certificatePem: reply.certificatePem, chainPem: reply.chainPem, serial: reply.serial };
  };

  before(async () => {
    e2e = await startE2eBroker();
    const definition = grpc.loadPackageDefinition(protoLoader.loadSync(protoPath, { keepCase: true, enums: String })) as unknown as { grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } } };
    health = new definition.grpc.health.v1.Health(e2e.address, grpc.credentials.createSsl(Buffer.from(e2e.rootPem)), { 'grpc.ssl_target_name_override': 'localhost', 'grpc.default_authority': 'localhost' });
    service = await e2e.enroll(await e2e.bootstrapToken(IMPORT));
  });

  after(async () => {
    health.close();
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('SERVING after the start-up self-test of every online key', async () => {
    expect(e2e.broker.health.report).to.include({ serving: true });
    expect(await status()).to.equal('SERVING');
    expect(await status('credbroker.v1.Certificates')).to.equal('SERVING');
  });

  it('HSM session lost: NOT_SERVING at once, calls UNAVAILABLE; reconnected: SERVING again, calls work, no restart', async () => {
    e2e.broker.token.markLost('e2e: the HSM went away');
    expect(await status()).to.equal('NOT_SERVING');
    expect(await status('credbroker.v1.Tokens')).to.equal('NOT_SERVING');
    expect(e2e.broker.health.report.reasons.join(' ')).to.match(/hsm: token .* lost/);
    const error = await grpcError(renew());
    expect(error.code).to.equal(grpc.status.UNAVAILABLE);
    expect(error.details).to.match(/reconnect|not reachable|retry/);
    const last = await e2e.broker.store.transaction((tx) => tx.lastAuditEntry());
    expect(last).to.include({ action: 'Renew', outcome: 'failed' });

    const reconnected = once(e2e.broker.token, 'reconnected');
    expect(e2e.broker.token.reconnectNow()).to.equal(true);
    await reconnected;
    const report = await e2e.broker.health.check();
    expect(report).to.include({ serving: true });
    expect(await status()).to.equal('SERVING');
    await renew();
    expect(service.serial).to.match(/^[0-9a-f]+$/);
  });

  it('the intermediate close to expiry: NOT_SERVING with the reason; SERVING again when time is back', async () => {
    const intermediate = new X509Certificate(service.chainPem);
    const left = new Date(intermediate.validTo).getTime() - Date.now();
    e2e.clock.offsetMs = left - 6 * 3_600_000; // six hours left
    try {
      const report = await e2e.broker.health.check();
      expect(report.serving).to.equal(false);
      expect(report.reasons.join(' ')).to.match(/ca: the intermediate expires in [0-9.]+ h/);
      expect(await status()).to.equal('NOT_SERVING');
    } finally {
      e2e.clock.offsetMs = 0;
    }
    expect((await e2e.broker.health.check()).serving).to.equal(true);
    expect(await status()).to.equal('SERVING');
  });
});
