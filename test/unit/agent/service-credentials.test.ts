/** ServiceCredentials on a fake broker: the join token's life, token caching across rotations, the grpc provider's updates. */
import { expect } from 'chai';
import { IdentityCertificateProvider, ServiceCredentials, ServiceIdentity } from '../../../src/agent/index.js';
import { BrokerError, ManualClock, ManualScheduler, Secret } from '../../../src/core/index.js';
import { FakeTransport, fixedRandom } from './fake-transport.js';

function options(transport: FakeTransport, clock: ManualClock, joinToken?: Secret) {
  return {
    broker: { address: '127.0.0.1:1', trustBundlePem: 'ROOTS' },
    clock,
    scheduler: new ManualScheduler(clock),
    random: fixedRandom(0),
    transport,
    watch: false,
    ...(joinToken === undefined ? {} : { joinToken }),
  };
}

describe('agent/ServiceCredentials', () => {
  it('enrolls with the join token it was given and disposes it once the broker accepted it', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const transport = new FakeTransport(clock);
    const token = Secret.from('cbjt1-library-token');
    const credentials = await ServiceCredentials.start(options(transport, clock, token));
    expect(transport.tokens).to.deep.equal(['cbjt1-library-token']);
    expect(token.disposed).to.equal(true);
    expect(credentials.identity.serial).to.equal(credentials.status().serial);
    await credentials.close();
    expect(transport.closed).to.equal(true);
  });

  it('a refused join token is not disposed by a failed attempt, and start reports the refusal', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const transport = new FakeTransport(clock);
    transport.fail('enroll', new BrokerError('unauthenticated', { code: 'broker.unauthenticated', publicMessage: 'Enroll: the join token expired (UNAUTHENTICATED)' }));
    const token = Secret.from('cbjt1-expired');
    const error = await ServiceCredentials.start(options(transport, clock, token)).then(
      () => null,
      (caught: unknown) => caught as BrokerError,
    );
    expect(error?.publicMessage).to.contain('expired');
    expect(token.disposed).to.equal(false);
    expect(transport.closed).to.equal(true);
  });

  it('tokens are cached, and fetched again after a rotation (a bound token names the old certificate)', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const transport = new FakeTransport(clock);
    const credentials = await ServiceCredentials.start(options(transport, clock, Secret.from('cbjt1-t')));
    const first = await credentials.token('storage.source', ['media.source.read']);
    expect(await credentials.token('storage.source', ['media.source.read'])).to.equal(first);
    await credentials.renewNow();
    expect(await credentials.token('storage.source', ['media.source.read'])).to.not.equal(first);
    expect(transport.count('issueToken')).to.equal(2);
    await credentials.close();
  });

  it('the grpc certificate provider hands every listener the current identity, and each later one', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const issued = (serial: string, roots: string) =>
      ServiceIdentity.fromIssued('KEY', { certificatePem: `CERT ${serial}`, chainPem: 'CHAIN', trustBundlePem: roots, serial, spiffeId: 'spiffe://unit.test/x', notBeforeUnix: 0, notAfterUnix: clock.now().getTime() / 1000 + 3600 });
    const provider = new IdentityCertificateProvider(issued('01', 'ROOTS-1'));
    const certificates: string[] = [];
    const cas: string[] = [];
    provider.addIdentityCertificateListener((update) => certificates.push(update?.certificate.toString() ?? 'none'));
    provider.addCaCertificateListener((update) => cas.push(update?.caCertificate.toString() ?? 'none'));
    await Promise.resolve();
    provider.update(issued('02', 'ROOTS-2'));
    expect(certificates).to.deep.equal(['CERT 01\nCHAIN\n', 'CERT 02\nCHAIN\n']);
    expect(cas).to.deep.equal(['ROOTS-1', 'ROOTS-2']);
  });
});
