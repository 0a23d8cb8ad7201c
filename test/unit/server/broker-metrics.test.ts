import { expect } from 'chai';
import * as grpc from '@grpc/grpc-js';
import type * as x509 from '@peculiar/x509';
import { ManualClock } from '../../../src/core/index.js';
import { BrokerMetrics, type MetricsSources } from '../../../src/server/broker-metrics.js';
import type { CertificateFilter, CertificateRecord, Store, StoreTransaction } from '../../../src/store/index.js';
import { parseExposition, samplesOf, valueOf, type Sample } from '../../helpers/prometheus-text.js';

const START = Date.parse('2026-12-04T00:00:00Z');
const TD = 'spiffe://unit.test';

/** A store that answers the four reads the metrics make, pages through `live`, and counts transactions. */
class FakeStore {
  transactions = 0;
  failing = false;
  live: Pick<CertificateRecord, 'serial' | 'spiffeId' | 'profile'>[] = [];
  filters: CertificateFilter[] = [];
  joinTokens = 2;
  lastSeq = 40;
  checkpoint: { seq: number; time: Date } | null = { seq: 30, time: new Date(START - 90_000) };

  readonly store: Store = {
    transaction: async <T>(work: (tx: StoreTransaction) => Promise<T>): Promise<T> => {
      this.transactions++;
      if (this.failing) throw new Error('store closed');
      return work(this.#tx());
    },
    close: () => Promise.resolve(),
  };

  #tx(): StoreTransaction {
    const tx = {
      countOutstandingJoinTokens: () => Promise.resolve(this.joinTokens),
      lastAuditEntry: () => Promise.resolve(this.lastSeq === 0 ? null : { seq: this.lastSeq }),
      lastAuditCheckpoint: () => Promise.resolve(this.checkpoint),
      listCertificates: (filter: CertificateFilter, pageSize: number, pageToken: string) => {
        this.filters.push(filter);
        const offset = pageToken === '' ? 0 : Number(pageToken);
        const items = this.live.slice(offset, offset + Math.min(pageSize, 2));
        const next = offset + items.length;
        return Promise.resolve({ items, nextPageToken: next < this.live.length ? String(next) : '' });
      },
    };
    return tx as unknown as StoreTransaction;
  }
}

function certificate(serial: string, daysLeft: number): x509.X509Certificate {
  return { serialNumber: serial.toUpperCase(), notAfter: new Date(START + daysLeft * 86_400_000) } as unknown as x509.X509Certificate;
}

function setup(): { clock: ManualClock; metrics: BrokerMetrics; store: FakeStore; watched: Set<string>; token: { state: MetricsSources['token']['state']; poolUsage: { size: number; inUse: number; waiting: number }; stats: MetricsSources['token']['stats'] }; scrape: () => Promise<Sample[]> } {
  const clock = new ManualClock(START);
  const metrics = new BrokerMetrics({ clock, defaultMetrics: false, storeFiguresMaxAgeMs: 5_000 });
  const store = new FakeStore();
  const watched = new Set<string>();
  const token = {
    state: 'open' as MetricsSources['token']['state'],
    poolUsage: { size: 4, inUse: 1, waiting: 0 },
    stats: { signatures: 10, invalidSignatures: 0, retries: 0, failedSignatures: 0, sessionLosses: 0, reconnects: 0 },
  };
  metrics.attach({
    store: store.store,
    hub: {
      get size() {
        return watched.size;
      },
      isConnected: (serial) => watched.has(serial),
    },
    token,
    ca: () => ({ roots: [certificate('0a', 30)], intermediate: certificate('0B', 20) }),
  });
  return { clock, metrics, store, watched, token, scrape: async () => parseExposition(await metrics.text()) };
}

describe('server/broker-metrics', () => {
  it('counts RPCs by method and gRPC status name, and times them', async () => {
    const { metrics, scrape } = setup();
    metrics.unaryFinished('Renew', grpc.status.OK, 0.002);
    metrics.unaryFinished('Renew', grpc.status.OK, 0.004);
    metrics.unaryFinished('ForceRotate', grpc.status.PERMISSION_DENIED, 0.0007);
    metrics.watchStarted(grpc.status.OK);
    metrics.watchStarted(grpc.status.UNAUTHENTICATED);
    const samples = await scrape();
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'Renew', outcome: 'OK' })).to.equal(2);
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'ForceRotate', outcome: 'PERMISSION_DENIED' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rpc_requests_total', { rpc: 'Watch', outcome: 'UNAUTHENTICATED' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rpc_duration_seconds_count', { rpc: 'Renew' })).to.equal(2);
    expect(valueOf(samples, 'credbroker_rpc_duration_seconds_sum', { rpc: 'Renew' })).to.be.closeTo(0.006, 1e-12);
    expect(valueOf(samples, 'credbroker_rpc_duration_seconds_bucket', { rpc: 'Renew', le: '0.0025' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rpc_duration_seconds_bucket', { rpc: 'ForceRotate', le: '0.001' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rpc_duration_seconds_bucket', { rpc: 'Renew', le: '0.0005' })).to.equal(0);
    expect(samplesOf(samples, 'credbroker_rpc_duration_seconds_count', { rpc: 'Watch' }), 'a stream has no latency').to.have.length(0);
  });

  it('observes certificate validity (backdate included) per profile, tokens per audience and binding, signatures per key', async () => {
    const { metrics, scrape } = setup();
    metrics.certificateIssued({ profile: 'service', notBefore: new Date(START - 60_000), notAfter: new Date(START + 3_600_000) });
    metrics.tokenIssued({ audience: 'storage.source', bound: true, ttlSeconds: 300 });
    metrics.tokenIssued({ audience: 'storage.source', bound: false, ttlSeconds: 60 });
    metrics.signed('intermediate', 0.00009);
    const samples = await scrape();
    expect(valueOf(samples, 'credbroker_certificate_ttl_seconds_bucket', { profile: 'service', le: '3660' }), 'a 1 h certificate counts at le=3660').to.equal(1);
    expect(valueOf(samples, 'credbroker_certificate_ttl_seconds_bucket', { profile: 'service', le: '1860' })).to.equal(0);
    expect(valueOf(samples, 'credbroker_certificate_ttl_seconds_sum', { profile: 'service' })).to.equal(3660);
    expect(valueOf(samples, 'credbroker_tokens_issued_total', { audience: 'storage.source', bound: 'true' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_tokens_issued_total', { audience: 'storage.source', bound: 'false' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_token_ttl_seconds_sum', { audience: 'storage.source' })).to.equal(360);
    expect(valueOf(samples, 'credbroker_hsm_sign_duration_seconds_bucket', { key: 'intermediate', le: '0.0001' })).to.equal(1);
  });

  it('rotation: requests and targets by reason, MTTR histogram', async () => {
    const { metrics, scrape } = setup();
    metrics.rotationRequested('superseded', 3);
    metrics.targetRotated('superseded', 0.4);
    metrics.targetRotated('superseded', 1200);
    const samples = await scrape();
    expect(valueOf(samples, 'credbroker_rotations_total', { reason: 'superseded' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rotation_targets_total', { reason: 'superseded' })).to.equal(3);
    expect(valueOf(samples, 'credbroker_rotation_mttr_seconds_count', { reason: 'superseded' })).to.equal(2);
    expect(valueOf(samples, 'credbroker_rotation_mttr_seconds_bucket', { reason: 'superseded', le: '0.5' })).to.equal(1);
    expect(valueOf(samples, 'credbroker_rotation_mttr_seconds_bucket', { reason: 'superseded', le: '1800' })).to.equal(2);
  });

  it('HSM figures at scrape time: up, pool, and counters that follow the token\'s stats', async () => {
    const { token, scrape } = setup();
    let samples = await scrape();
    expect(valueOf(samples, 'credbroker_hsm_up')).to.equal(1);
    expect(valueOf(samples, 'credbroker_hsm_sessions')).to.equal(4);
    expect(valueOf(samples, 'credbroker_hsm_sessions_in_use')).to.equal(1);
    expect(valueOf(samples, 'credbroker_hsm_verify_after_sign_failures_total')).to.equal(0);
    token.state = 'reconnecting';
    token.stats.invalidSignatures = 2;
    token.stats.sessionLosses = 1;
    samples = await scrape();
    expect(valueOf(samples, 'credbroker_hsm_up')).to.equal(0);
    expect(valueOf(samples, 'credbroker_hsm_verify_after_sign_failures_total')).to.equal(2);
    expect(valueOf(samples, 'credbroker_hsm_session_losses_total')).to.equal(1);
    samples = await scrape();
    expect(valueOf(samples, 'credbroker_hsm_verify_after_sign_failures_total'), 'a second scrape adds nothing').to.equal(2);
  });

  it('seconds until each CA certificate expires, by role and lowercase serial, from the clock at scrape', async () => {
    const { clock, scrape } = setup();
    let samples = await scrape();
    expect(valueOf(samples, 'credbroker_ca_certificate_expires_in_seconds', { role: 'root', serial: '0a' })).to.equal(30 * 86_400);
    expect(valueOf(samples, 'credbroker_ca_certificate_expires_in_seconds', { role: 'intermediate', serial: '0b' })).to.equal(20 * 86_400);
    clock.advance(21 * 86_400_000);
    samples = await scrape();
    expect(valueOf(samples, 'credbroker_ca_certificate_expires_in_seconds', { role: 'intermediate' })).to.equal(-86_400);
  });

  it('store figures: join tokens, audit chain and checkpoint age, coverage by profile over every page of live certificates', async () => {
    const { store, watched, scrape } = setup();
    store.live = [
      { serial: 'a1', spiffeId: `${TD}/import`, profile: 'service' },
      { serial: 'b1', spiffeId: `${TD}/blur`, profile: 'service' },
      { serial: 'b2', spiffeId: `${TD}/blur`, profile: 'service' },
      { serial: 'c1', spiffeId: `${TD}/detect`, profile: 'service' },
      { serial: 'o1', spiffeId: `${TD}/ops/alice`, profile: 'operator' },
    ];
    watched.add('b2');
    watched.add('c1');
    const samples = await scrape();
    expect(valueOf(samples, 'credbroker_join_tokens_outstanding')).to.equal(2);
    expect(valueOf(samples, 'credbroker_audit_chain_length')).to.equal(40);
    expect(valueOf(samples, 'credbroker_audit_unchecked_entries')).to.equal(10);
    expect(valueOf(samples, 'credbroker_audit_checkpoint_age_seconds')).to.equal(90);
    expect(valueOf(samples, 'credbroker_rotation_coverage_ratio', { profile: 'service' })).to.be.closeTo(2 / 3, 1e-12);
    expect(valueOf(samples, 'credbroker_rotation_coverage_ratio', { profile: 'operator' })).to.equal(0);
    expect(valueOf(samples, 'credbroker_live_identities', { profile: 'service' })).to.equal(3);
    expect(valueOf(samples, 'credbroker_watching_identities', { profile: 'service' })).to.equal(2);
    // Live means valid now and not revoked, the same instant on every page.
    expect(store.filters).to.have.length(3);
    expect(new Set(store.filters.map((f) => `${f.validAt?.getTime() ?? 'none'} ${String(f.revoked)}`))).to.deep.equal(new Set([`${START} false`]));
  });

  it('a scrape storm reads the store once per freshness window', async () => {
    const { clock, store, scrape } = setup();
    await Promise.all(Array.from({ length: 20 }, () => scrape()));
    const perRead = store.transactions;
    expect(perRead, 'one read: counts + one page').to.equal(2);
    clock.advance(4_999);
    await scrape();
    expect(store.transactions).to.equal(perRead);
    clock.advance(1);
    await scrape();
    expect(store.transactions).to.equal(2 * perRead);
  });

  it('a failing store: figures read NaN, coverage is absent, the failure is counted, nothing throws', async () => {
    const { store, scrape } = setup();
    store.live = [{ serial: 'a1', spiffeId: `${TD}/import`, profile: 'service' }];
    store.failing = true;
    const samples = await scrape();
    expect(valueOf(samples, 'credbroker_join_tokens_outstanding')).to.be.NaN;
    expect(valueOf(samples, 'credbroker_audit_chain_length')).to.be.NaN;
    expect(samplesOf(samples, 'credbroker_rotation_coverage_ratio')).to.have.length(0);
    expect(valueOf(samples, 'credbroker_metrics_store_read_errors_total')).to.equal(1);
  });

  it('no checkpoint yet: its age is NaN (unknown), not 0 (fresh)', async () => {
    const { store, scrape } = setup();
    store.checkpoint = null;
    const samples = await scrape();
    expect(valueOf(samples, 'credbroker_audit_checkpoint_age_seconds')).to.be.NaN;
    expect(valueOf(samples, 'credbroker_audit_unchecked_entries')).to.equal(40);
  });

  it('each broker has its own registry: two never share a counter', async () => {
    const a = setup();
    const b = setup();
    a.metrics.unaryFinished('Renew', grpc.status.OK, 0.001);
    expect(valueOf(await a.scrape(), 'credbroker_rpc_requests_total', { rpc: 'Renew', outcome: 'OK' })).to.equal(1);
    expect(samplesOf(await b.scrape(), 'credbroker_rpc_requests_total')).to.have.length(0);
  });

  it('with default metrics: Node.js event-loop lag and process figures are on the same registry', async () => {
    const metrics = new BrokerMetrics({ clock: new ManualClock(START) });
    const names = new Set(parseExposition(await metrics.text()).map((s) => s.name));
    for (const name of ['nodejs_eventloop_lag_seconds', 'process_cpu_user_seconds_total', 'nodejs_heap_size_used_bytes']) expect(names, name).to.include(name);
  });
});
