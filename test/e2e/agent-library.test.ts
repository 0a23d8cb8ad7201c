/**
 * The client library (ServiceCredentials) against the real broker: a grpc-js mTLS server and
 * client that keep handshaking across a forced rotation; node https on the same identities;
 * cached tokens from IssueToken verified with the JWKS from GetJwks.
 */
import { expect } from 'chai';
import { once } from 'node:events';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { ServiceCredentials, spiffeIdCheck, unary, type BrokerClients, type ServiceCredentialsOptions } from '../../src/agent/index.js';
import { BrokerError, ManualScheduler, Secret, type AdvanceableClock } from '../../src/core/index.js';
import { BLUR, IMPORT, OPERATOR, TRUST_DOMAIN, startE2eBroker, type E2eBroker } from './harness.js';

/** A one-method service on raw bytes: replies with the serial of the client certificate it saw. */
const ECHO: grpc.ServiceDefinition = {
  Echo: {
    path: '/e2e.Echo/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: Buffer) => value,
    requestDeserialize: (value: Buffer) => value,
    responseSerialize: (value: Buffer) => value,
    responseDeserialize: (value: Buffer) => value,
  },
};
const EchoClient = grpc.makeGenericClientConstructor(ECHO, 'Echo');

/** The serial of the peer certificate TLS verified, lowercase hex. */
function peerSerial(call: grpc.ServerUnaryCall<Buffer, Buffer>): string {
  return call.getAuthContext().sslPeerCertificate?.serialNumber.toLowerCase() ?? 'none';
}

/** Calls Echo on a new channel (its own subchannel: a new TLS handshake). */
async function echo(port: number, credentials: grpc.ChannelCredentials): Promise<string> {
  // A name for SNI (grpc-js would send the IP, which RFC 6066 forbids); the server is checked by SPIFFE ID.
  const client = new EchoClient(`127.0.0.1:${port}`, credentials, { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'import.pipeline.internal' });
  try {
    return await new Promise<string>((resolve, reject) => {
      client.makeUnaryRequest('/e2e.Echo/Echo', (v: Buffer) => v, (v: Buffer) => v, Buffer.alloc(0), { deadline: Date.now() + 10_000 }, (error, reply) => {
        if (error !== null || reply === undefined) reject(error ?? new Error('no reply'));
        else resolve(reply.toString());
      });
    });
  } finally {
    client.close();
  }
}

/** The serial of the certificate a TLS server presents to a client with `context`. */
async function serverSerial(port: number, context: tls.SecureContext, expected: string): Promise<string> {
  const socket = tls.connect({ host: '127.0.0.1', port, secureContext: context, ALPNProtocols: ['h2'], checkServerIdentity: spiffeIdCheck(expected), servername: 'localhost' });
  try {
    await once(socket, 'secureConnect');
    return socket.getPeerCertificate().serialNumber.toLowerCase();
  } finally {
    socket.destroy();
  }
}

describe('e2e: the client library (ServiceCredentials)', function () {
  this.timeout(60_000);
  let e2e: E2eBroker;
  let ops: BrokerClients;
  const cleanup: (() => Promise<void> | void)[] = [];

  before(async () => {
    e2e = await startE2eBroker();
    ops = e2e.as(await e2e.enroll(await e2e.bootstrapToken(OPERATOR)));
  });

  afterEach(async () => {
    for (const step of cleanup.splice(0).reverse()) await step();
    e2e.clock.offsetMs = 0;
  });

  after(async () => {
    if ((e2e as E2eBroker | undefined) !== undefined) await e2e.close();
  });

  /** Credentials for `spiffeId`, enrolled with a fresh join token, on the broker's shared clock. */
  async function credentialsFor(spiffeId: string, options: Partial<ServiceCredentialsOptions> = {}): Promise<ServiceCredentials> {
    const clock: AdvanceableClock = { now: () => e2e.clock.now(), advance: (ms: number) => void (e2e.clock.offsetMs += ms) };
    const credentials = await ServiceCredentials.start({
      broker: { address: e2e.address, serverName: 'localhost', trustBundlePem: e2e.rootPem },
      joinToken: Secret.from(await e2e.bootstrapToken(spiffeId)),
      clock,
      scheduler: new ManualScheduler(clock),
      ...options,
    });
    cleanup.push(() => credentials.close());
    return credentials;
  }

  it('a grpc-js mTLS server and client keep handshaking across a forced rotation of both', async () => {
    const server = await credentialsFor(IMPORT);
    const client = await credentialsFor(BLUR);
    const serverWatching = server.status().watching ? Promise.resolve() : once(server.events, 'watching');
    const clientWatching = client.status().watching ? Promise.resolve() : once(client.events, 'watching');
    await Promise.all([serverWatching, clientWatching]);

    const grpcServer = new grpc.Server();
    grpcServer.addService(ECHO, {
      Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
        callback(null, Buffer.from(peerSerial(call)));
      },
    });
    const port = await new Promise<number>((resolve, reject) => {
      grpcServer.bindAsync('127.0.0.1:0', server.grpcServerCredentials(), (error, bound) => {
        if (error === null) resolve(bound);
        else reject(error);
      });
    });
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          grpcServer.tryShutdown(() => {
            resolve();
          });
        }),
    );
    // Made once, before the rotation: the same credentials object must pick up the new identity.
    const channelCredentials = client.grpcChannelCredentials({ serverSpiffeId: IMPORT });

    const before = { server: server.identity.serial, client: client.identity.serial };
    expect(await echo(port, channelCredentials)).to.equal(before.client);
    expect(await serverSerial(port, client.secureContext(), IMPORT)).to.equal(before.server);

    const renewed = Promise.all([once(server.events, 'renewed'), once(client.events, 'renewed')]);
    const rotation = await unary<{ rotationId: string; targeted: number }>(ops.rotation, 'ForceRotate', { selector: `spiffe://${TRUST_DOMAIN}/pipeline/**` });
    await renewed;
    const after = { server: server.identity.serial, client: client.identity.serial };
    expect(after.server).to.not.equal(before.server);
    expect(after.client).to.not.equal(before.client);

    expect(await echo(port, channelCredentials), 'the client presents its new certificate').to.equal(after.client);
    expect(await serverSerial(port, client.secureContext(), IMPORT), 'the server presents its new certificate').to.equal(after.server);
    const status = await unary<{ rotated: number; complete: boolean }>(ops.rotation, 'GetRotation', { rotationId: rotation.rotationId });
    expect(status.rotated).to.be.at.least(2);

    // A client that expects another SPIFFE ID refuses the server.
    const wrong = client.grpcChannelCredentials({ serverSpiffeId: `spiffe://${TRUST_DOMAIN}/pipeline/other` });
    const refused = await echo(port, wrong).then(
      () => null,
      (error: unknown) => error as grpc.ServiceError,
    );
    expect(refused?.code).to.equal(grpc.status.UNAVAILABLE);
  });

  it('node https: attachTlsServer and httpsAgent present the current certificates before and after a renewal', async () => {
    const server = await credentialsFor(IMPORT, { watch: false });
    const client = await credentialsFor(BLUR, { watch: false });
    const httpsServer = https.createServer({ requestCert: true, rejectUnauthorized: true }, (request, response) => {
      const socket = request.socket;
      response.end(socket instanceof tls.TLSSocket ? socket.getPeerCertificate().serialNumber.toLowerCase() : 'not TLS');
    });
    const detach = server.attachTlsServer(httpsServer);
    await new Promise<void>((resolve) => httpsServer.listen(0, '127.0.0.1', resolve));
    cleanup.push(() => {
      detach();
      return new Promise<void>((resolve) => httpsServer.close(() => { resolve(); }));
    });
    const port = (httpsServer.address() as AddressInfo).port;
    const agent = client.httpsAgent({ serverSpiffeId: IMPORT });
    cleanup.push(() => {
      agent.destroy();
    });
    const get = (): Promise<{ body: string; serverSerial: string }> =>
      new Promise((resolve, reject) => {
        https
          .get({ host: '127.0.0.1', port, path: '/', agent }, (response) => {
            let body = '';
            const socket = response.socket;
            const serial = socket instanceof tls.TLSSocket ? socket.getPeerCertificate().serialNumber.toLowerCase() : 'not TLS';
            response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
            response.on('end', () => {
              resolve({ body, serverSerial: serial });
            });
          })
          .on('error', reject);
      });

    expect(await get()).to.deep.equal({ body: client.identity.serial, serverSerial: server.identity.serial });
    await Promise.all([server.renewNow(), client.renewNow()]);
    expect(server.status().counters.renewals).to.equal(1);
    expect(await get()).to.deep.equal({ body: client.identity.serial, serverSerial: server.identity.serial });
  });

  it('token(): cached per (audience, scopes) until 3/4 of its lifetime; tokenVerifier() verifies it with the broker\'s JWKS', async () => {
    const credentials = await credentialsFor(BLUR, { watch: false });
    const first = await credentials.token('storage.source', ['media.source.read']);
    expect(await credentials.token('storage.source', ['media.source.read'])).to.equal(first);
    const other = await credentials.token('storage.anonymized', ['media.anonymized.write']);
    expect(other).to.not.equal(first);

    const verifier = credentials.tokenVerifier();
    const verified = await verifier.verify(first, { audience: 'storage.source', scopes: ['media.source.read'] });
    expect(verified).to.include({ subject: BLUR, audience: 'storage.source', bound: false });

    // Default token TTL 5 min: at 3/4 (225 s) a new one is fetched.
    e2e.clock.offsetMs += 224_000;
    expect(await credentials.token('storage.source', ['media.source.read'])).to.equal(first);
    e2e.clock.offsetMs += 2_000;
    const second = await credentials.token('storage.source', ['media.source.read']);
    expect(second).to.not.equal(first);

    const bound = await credentials.token('storage.source', ['media.source.read'], { bindToCertificate: true });
    const checked = await verifier.verify(bound, { audience: 'storage.source', clientCertificate: credentials.identity.certificatePem, requireBinding: true });
    expect(checked.bound).to.equal(true);

    const denied = await credentials.token('storage.source', ['media.source.delete']).then(
      () => null,
      (error: unknown) => error as BrokerError,
    );
    expect(denied?.kind).to.equal('denied');
  });

  it('without an identity and without a join token: start fails saying a join token is needed', async () => {
    const error = await ServiceCredentials.start({ broker: { address: e2e.address, serverName: 'localhost', trustBundlePem: e2e.rootPem } }).then(
      () => null,
      (caught: unknown) => caught as BrokerError,
    );
    expect(error?.code).to.equal('agent.join_token_needed');
    expect(error?.publicMessage).to.contain('a new join token is needed');
  });
});
