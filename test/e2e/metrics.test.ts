/**
 * Metrics end to end: a broker on the run's SoftHSM does an enroll, a renew under a forced
 * rotation pushed over Watch, a refused call and a token; then `GET /metrics` on its own
 * listener shows every family of issue 6 with the values those calls imply, and no secret.
 * Also: only GET /metrics is served, and a metrics address in use stops the start with a
 * message naming the address and what to do.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import * as grpc from '@grpc/grpc-js';
import { newKeyAndCsr, unary, type BrokerClients } from '../../src/agent/index.js';
import { BrokerError } from '../../src/core/index.js';
import { BLUR, IMPORT, OPERATOR, grpcError, startE2eBroker, type ClientIdentity, type E2eBroker } from './harness.js';
import { openWatch, type WatchStream } from './watch-stream.js';
import { parseExposition, samplesOf, valueOf, type Sample } from '../helpers/prometheus-text.js';

/** GETs (or sends `method` to) `path` on the broker's metrics listener. */
async function http(e2e: E2eBroker, path: string, method = 'GET'): Promise<{ status: number; contentType: string; text: string }> {
  const response = await fetch(`http://127.0.0.1:${String(e2e.broker.metricsPort)}${path}`, { method });
  return { status: response.status, contentType: response.headers.get('content-type') ?? '', text: await response.text() };
}

describe('e2e: Prometheus metrics', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let ops: BrokerClients;
  let text = '';
  let samples: Sample[] = [];
  let secrets: string[] = [];
  let lastSeqAround: number[] = [];
  let checkpointSeq = 0;
  let watch: WatchStream | null = null;

  before(async () => {
    e2e = await startE2eBroker();
    ops = e2e.as(await e2e.enroll(await e2e.bootstrapToken(OPERATOR)));

    // A service that watches, is rotated by force, renews, and watches again with its new certificate.
    const blurToken = await e2e.bootstrapToken(BLUR);
    const blur = await e2e.enroll(blurToken);
    const first = openWatch(e2e.as(blur));
    expect((await first.next()).kind).to.equal('WATCHING');
    const issued = await unary<{ token: string }>(e2e.as(blur).tokens, 'IssueToken', { audience: 'storage.source', scopes: ['media.source.read'], bindToCertificate: true });
    const refused = await grpcError(unary(e2e.as(blur).rotation, 'ForceRotate', { selector: BLUR }));
    expect(refused.code).to.equal(grpc.status.PERMISSION_DENIED);
    const rotation = await unary<{ targeted: number }>(ops.rotation, 'ForceRotate', { selector: BLUR });
    expect(rotation.targeted).to.equal(1);
    expect((await first.next()).kind).to.equal('RENEW_NOW');
    const { keyPem, csrDer } = await newKeyAndCsr();
    const renewed = await unary<{ serial: string; certificatePem: string; chainPem: string }>(e2e.as(blur).certificates, 'Renew', { csr: Buffer.from(csrDer) });
    const blurNow: ClientIdentity = { keyPem, certificatePem: renewed.certificatePem, chainPem: renewed.chainPem, serial: renewed.serial };
    await first.ended;
    watch = openWatch(e2e.as(blurNow));
    expect((await watch.next()).kind).to.equal('WATCHING');

    // A service that never watches, and a join token nobody used yet.
    await e2e.enroll(await e2e.bootstrapToken(IMPORT));
    const unused = await e2e.bootstrapToken(IMPORT);
    // Every entry so far under a signed checkpoint.
    checkpointSeq = (await e2e.broker.checkpointer.flush(e2e.clock.now()))?.seq ?? 0;

    const pin = readFileSync(join(e2e.dir, 'online.pin'), 'utf8').trim();
    secrets = [blurToken, unused, issued.token, pin, keyPem, Buffer.from(csrDer).toString('base64'), '-----BEGIN'];
    const lastSeq = async (): Promise<number> => (await e2e.broker.store.transaction((tx) => tx.lastAuditEntry()))?.seq ?? 0;
    const before = await lastSeq();
    const response = await http(e2e, '/metrics');
    lastSeqAround = [before, await lastSeq()];
    expect(response.status).to.equal(200);
    expect(response.contentType).to.match(/^text\/plain; version=0\.0\.4/);
    text = response.text;
    samples = parseExposition(text);
  });

  after(async () => {
    watch?.cancel();
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  it('per RPC and outcome: counters by gRPC status name, latency histograms, open Watch streams', () => {
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'Enroll', outcome: 'OK' })).to.equal(3);
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'Renew', outcome: 'OK' })).to.be.at.least(1);
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'ForceRotate', outcome: 'PERMISSION_DENIED' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'ForceRotate', outcome: 'OK' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'Watch', outcome: 'OK' })).to.equal(2);
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'IssueToken', outcome: 'OK' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rpc_duration_seconds_count', { rpc: 'Enroll' })).to.equal(3);
    const sum = valueOf(samples, 'credbroker_rpc_duration_seconds_sum', { rpc: 'Renew' });
    expect(sum).to.be.above(0).and.below(30);
    expect(valueOf(samples, 'credbroker_rpc_duration_seconds_bucket', { rpc: 'Renew', le: '+Inf' })).to.equal(valueOf(samples, 'credbroker_rpc_duration_seconds_count', { rpc: 'Renew' }));
    expect(valueOf(samples, 'credbroker_watch_streams_open'), 'the renewed certificate\'s stream; the superseded one was ended').to.equal(1);
  });

  it('HSM: sign latency by key label, pool size and use, availability, verify-after-sign failures', () => {
    // Server certificate, 3 enrollments and a renewal on the intermediate; the token on its own key.
    expect(valueOf(samples, 'credbroker_hsm_sign_duration_seconds_count', { key: 'intermediate' })).to.be.at.least(5);
    expect(valueOf(samples, 'credbroker_hsm_sign_duration_seconds_count', { key: 'token-signing' })).to.be.at.least(1);
    expect(valueOf(samples, 'credbroker_hsm_sign_duration_seconds_count', { key: 'audit' }), 'the flushed checkpoint').to.be.at.least(1);
    expect(valueOf(samples, 'credbroker_hsm_sign_duration_seconds_sum', { key: 'intermediate' })).to.be.above(0).and.below(10);
    expect(valueOf(samples, 'credbroker_hsm_sessions')).to.equal(4);
    expect(valueOf(samples, 'credbroker_hsm_sessions_in_use')).to.be.within(0, 4);
    expect(valueOf(samples, 'credbroker_hsm_up')).to.equal(1);
    expect(valueOf(samples, 'credbroker_hsm_verify_after_sign_failures_total')).to.equal(0);
  });

  it('issued certificates: validity distribution by profile; tokens by audience and binding, and their TTL', () => {
    // blur's enrollment and renewal, import's enrollment.
    expect(valueOf(samples, 'credbroker_certificate_ttl_seconds_count', { profile: 'service' })).to.equal(3);
    expect(valueOf(samples, 'credbroker_certificate_ttl_seconds_count', { profile: 'operator' })).to.equal(1);
    // BLUR and IMPORT get the policy's 1 h default: 3660 s with the backdate, so all in le="3660".
    expect(valueOf(samples, 'credbroker_certificate_ttl_seconds_bucket', { profile: 'service', le: '3660' })).to.equal(3);
    expect(valueOf(samples, 'credbroker_certificate_ttl_seconds_bucket', { profile: 'service', le: '1860' })).to.equal(0);
    expect(valueOf(samples, 'credbroker_tokens_issued_total', { audience: 'storage.source', bound: 'true' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_token_ttl_seconds_count', { audience: 'storage.source' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_token_ttl_seconds_sum', { audience: 'storage.source' }), 'the policy default, 5 min').to.equal(300);
  });

  it('seconds until each CA certificate expires, by role and serial', () => {
    const intermediate = new x509.X509Certificate(readFileSync(join(e2e.dir, 'intermediate.pem')));
    const root = new x509.X509Certificate(readFileSync(join(e2e.dir, 'root.pem')));
    const left = valueOf(samples, 'credbroker_ca_certificate_expires_in_seconds', { role: 'intermediate', serial: intermediate.serialNumber.toLowerCase() });
    expect(left).to.be.above(19 * 86_400).and.at.most(20 * 86_400);
    expect(valueOf(samples, 'credbroker_ca_certificate_expires_in_seconds', { role: 'root', serial: root.serialNumber.toLowerCase() })).to.be.above(left);
  });

  it('rotation: requests and targets by reason, MTTR of the pushed renewal, coverage by profile', () => {
    expect(valueOf(samples, 'credbroker_rotations_total', { reason: 'superseded' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rotation_targets_total', { reason: 'superseded' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rotation_mttr_seconds_count', { reason: 'superseded' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rotation_mttr_seconds_sum', { reason: 'superseded' })).to.be.at.least(0).and.below(30);
    // Services with a live certificate: blur (watching) and import (not): 1/2. The operator never watches.
    const service = valueOf(samples, 'credbroker_rotation_coverage_ratio', { profile: 'service' });
    expect(service).to.be.within(0, 1);
    expect(service).to.equal(0.5);
    expect(valueOf(samples, 'credbroker_live_identities', { profile: 'service' })).to.equal(2);
    expect(valueOf(samples, 'credbroker_watching_identities', { profile: 'service' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rotation_coverage_ratio', { profile: 'operator' })).to.equal(0);
  });

  it('store figures: join tokens outstanding, audit chain length = the store\'s last seq, checkpoint age', () => {
    expect(valueOf(samples, 'credbroker_join_tokens_outstanding')).to.equal(1);
    const [before, after] = lastSeqAround;
    expect(before, 'nothing was audited during the scrape').to.equal(after);
    expect(valueOf(samples, 'credbroker_audit_chain_length')).to.equal(before);
    expect(checkpointSeq).to.equal(before);
    expect(valueOf(samples, 'credbroker_audit_unchecked_entries')).to.equal(0);
    expect(valueOf(samples, 'credbroker_audit_checkpoint_age_seconds')).to.be.at.least(0).and.below(60);
    expect(valueOf(samples, 'credbroker_metrics_store_read_errors_total')).to.equal(0);
  });

  it('event-loop lag and process figures (prom-client default metrics) on the broker\'s registry', () => {
    for (const name of ['nodejs_eventloop_lag_seconds', 'nodejs_eventloop_lag_p99_seconds', 'process_cpu_user_seconds_total', 'process_resident_memory_bytes']) {
      expect(samplesOf(samples, name), name).to.have.length.at.least(1);
    }
    expect(valueOf(samples, 'nodejs_eventloop_lag_p99_seconds')).to.be.at.least(0);
  });

  it('no secret in the metrics: no join token, JWS, PIN, key, CSR or PEM', () => {
    expect(secrets).to.have.length(7);
    for (const secret of secrets) expect(text.includes(secret), `metrics contain ${secret.slice(0, 12)}…`).to.equal(false);
    const allowed = new Set(['rpc', 'outcome', 'key', 'profile', 'audience', 'bound', 'role', 'serial', 'reason', 'le', 'kind', 'type', 'space', 'version', 'major', 'minor', 'patch']);
    const labels = new Set(samples.filter((s) => s.name.startsWith('credbroker_')).flatMap((s) => Object.keys(s.labels)));
    for (const label of labels) expect(allowed, `label ${label}`).to.include(label);
  });

  it('every credbroker_ metric the README lists is served', () => {
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const section = /\n## Metrics\n([\s\S]*?)\n## /.exec(readme)?.[1] ?? '';
    const listed = new Set(section.match(/credbroker_[a-z_]+/g) ?? []);
    expect(listed.size).to.be.at.least(25);
    const served = new Set([...text.matchAll(/^# TYPE (credbroker_[a-z_]+) /gm)].map((m) => m[1]));
    for (const name of listed) expect(served, name).to.include(name);
    for (const name of served) expect(listed, `${name} is served but not in the README`).to.include(name);
  });

  it('serves GET and HEAD /metrics only: 404 for other paths, 405 for other methods', async () => {
    expect((await http(e2e, '/')).status).to.equal(404);
    expect((await http(e2e, '/metrics/x')).status).to.equal(404);
    expect((await http(e2e, '/debug/pprof')).status).to.equal(404);
    expect((await http(e2e, '/metrics', 'POST')).status).to.equal(405);
    expect((await http(e2e, '/metrics', 'HEAD')).status).to.equal(200);
    expect((await http(e2e, '/metrics?name[]=x')).status).to.equal(200);
  });
});

describe('e2e: metrics listener address in use', function () {
  this.timeout(60_000);
  let occupier: Server | null = null;

  after(async () => {
    const server = occupier;
    if (server === null) return;
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  });

  it('startBroker fails with a BrokerError naming the address and what to do', async () => {
    const server = createServer();
    occupier = server;
    await new Promise<void>((resolve) => server.listen({ host: '127.0.0.1', port: 0 }, resolve));
    const address = server.address();
    const listen = `127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;
    let caught: unknown = null;
    let started: E2eBroker | null = null;
    try {
      started = await startE2eBroker({ metricsListen: listen });
    } catch (error) {
      caught = error;
    } finally {
      await started?.close();
    }
    expect(caught).to.be.instanceOf(BrokerError);
    const error = caught as BrokerError;
    expect(error.code).to.equal('metrics.listen_in_use');
    expect(error.publicMessage).to.contain(listen);
    expect(error.publicMessage).to.contain('already in use');
    expect(error.publicMessage).to.contain('metrics.listen');
    expect(error.publicMessage).to.contain('metrics.enabled: false');
  });
});
