/**
 * The transport's ceiling for the issue benchmark: a grpc-js server on 127.0.0.1:0 with one
 * unary echo method, behind mutual TLS (client certificate required and verified against the
 * throwaway CA), in this process — where the broker runs later — so that the broker's Renew rate
 * can be read as a fraction of what grpc-js itself does on the same machine.
 */
import * as grpc from '@grpc/grpc-js';
import type { PemPair } from './issue-ca.js';
import { ECHO_SERVICE } from './issue-protocol.js';

/** A running echo server. */
export interface EchoServer {
  readonly address: string;
  /** Echo calls served so far. */
  readonly served: () => number;
  stop(): Promise<void>;
}

/** Starts the echo server with `identity` as its certificate and `clientCaPem` as the only client CA. */
export async function startEchoServer(identity: PemPair, clientCaPem: string): Promise<EchoServer> {
  const server = new grpc.Server();
  let served = 0;
  server.addService(ECHO_SERVICE, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      served++;
      callback(null, call.request);
    },
  });
  const credentials = grpc.ServerCredentials.createSsl(Buffer.from(clientCaPem), [{ private_key: Buffer.from(identity.keyPem), cert_chain: Buffer.from(identity.certificatePem) }], true);
  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (error, bound) => {
      if (error === null) resolve(bound);
      else reject(error);
    });
  });
  return {
    address: `127.0.0.1:${port}`,
    served: () => served,
    stop: () =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
