/**
 * `credbroker serve` as a process: it prints where it listens, answers, and on SIGTERM drains,
 * signs a last audit checkpoint covering every entry, and exits 0.
 */
import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { connectBroker, unary } from '../../src/agent/index.js';
import { SqliteStore } from '../../src/store/index.js';
import { CLI_PATH } from '../helpers/cli.js';
import { startE2eBroker, type E2eBroker } from './harness.js';

describe('e2e: credbroker serve as a process', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let child: ChildProcess | null = null;

  before(async () => {
    // The harness makes the CA, policy and config; its in-process broker is stopped so the
    // spawned one is alone with the store.
    e2e = await startE2eBroker();
    await e2e.broker.stop();
  });

  after(async () => {
    child?.kill('SIGKILL');
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close().catch(() => undefined);
  });

  it('serves, then on SIGTERM drains, signs a final checkpoint and exits 0', async () => {
    const proc = spawn(process.execPath, [CLI_PATH, 'serve', '--config', e2e.configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const { address, metricsUrl } = await new Promise<{ address: string; metricsUrl: string }>((resolve, reject) => {
      proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        const match = /listening on (127\.0\.0\.1:\d+)/.exec(stdout);
        const metrics = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(stdout);
        if (match?.[1] !== undefined && metrics?.[1] !== undefined) resolve({ address: match[1], metricsUrl: metrics[1] });
      });
      proc.on('exit', (code) => {
        reject(new Error(`serve exited early (${String(code)}): ${stderr}`));
      });
    });
    const clients = connectBroker({ address, trustBundlePem: e2e.rootPem, serverName: 'localhost' });
    try {
      const bundle = await unary<{ trustDomain: string }>(clients.enrollment, 'GetTrustBundle', {});
      expect(bundle.trustDomain).to.equal('e2e.test');
      // One decision (a refused enrollment) for the audit log to carry.
      const refused = await unary(clients.enrollment, 'Enroll', { joinToken: 'cbjt1-bad', csr: Buffer.alloc(0) }).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).to.not.equal(null);
      // The metrics listener the config names (port 0 there), as printed.
      const scrape = await fetch(metricsUrl);
      expect(scrape.status).to.equal(200);
      expect(await scrape.text()).to.match(/^credbroker_rpc_requests_total\{rpc="Enroll",outcome="UNAUTHENTICATED"\} 1$/m);
    } finally {
      clients.close();
    }
    const exited = new Promise<number | null>((resolve) => proc.on('exit', resolve));
    proc.kill('SIGTERM');
    expect(await exited, stderr).to.equal(0);
    child = null;
    expect(stdout).to.contain('credbroker: stopped');

    const store = await SqliteStore.open(join(e2e.dir, 'broker.db'), { readOnly: true });
    try {
      const { last, checkpoint } = await store.transaction(async (tx) => ({ last: await tx.lastAuditEntry(), checkpoint: await tx.lastAuditCheckpoint() }));
      expect(last).to.not.equal(null);
      expect(checkpoint?.seq, 'the final checkpoint covers the whole log').to.equal(last?.seq);
    } finally {
      await store.close();
    }
  });
});
