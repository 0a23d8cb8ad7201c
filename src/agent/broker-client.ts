/**
 * A grpc-js client of the broker's API for services and tools: TLS that authenticates the
 * broker against the trust bundle, plus the caller's certificate when it has one (mutual TLS).
 */
import * as grpc from '@grpc/grpc-js';
import { loadBrokerApi } from './broker-api.js';

/** How to reach the broker. */
export interface BrokerConnection {
  /** host:port */
  readonly address: string;
  /** Roots that authenticate the broker (PEM). */
  readonly trustBundlePem: string | Buffer;
  /** The caller's key and certificate chain (PEM), for mutual TLS; absent for enrollment. */
  readonly clientKeyPem?: string | Buffer;
  readonly clientCertificateChainPem?: string | Buffer;
  /** The name to verify in the broker's certificate when the address is an IP (default: from the address). */
  readonly serverName?: string;
}

/** The services' clients, on one channel. */
export interface BrokerClients {
  readonly enrollment: grpc.Client & Record<string, unknown>;
  readonly certificates: grpc.Client & Record<string, unknown>;
  readonly administration: grpc.Client & Record<string, unknown>;
  readonly tokens: grpc.Client & Record<string, unknown>;
  readonly rotation: grpc.Client & Record<string, unknown>;
  close(): void;
}

let api: grpc.GrpcObject | null = null;

function loadApi(): grpc.GrpcObject {
  api ??= loadBrokerApi().grpcObject;
  return api;
}

/** Opens clients of the broker's services on one channel. */
export function connectBroker(connection: BrokerConnection): BrokerClients {
  const v1 = (loadApi().credbroker as grpc.GrpcObject).v1 as grpc.GrpcObject;
  const credentials = grpc.credentials.createSsl(
    Buffer.from(connection.trustBundlePem),
    connection.clientKeyPem === undefined ? null : Buffer.from(connection.clientKeyPem),
    connection.clientCertificateChainPem === undefined ? null : Buffer.from(connection.clientCertificateChainPem),
  );
  const options: grpc.ChannelOptions = connection.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': connection.serverName, 'grpc.default_authority': connection.serverName };
  const make = (name: string): grpc.Client & Record<string, unknown> => {
    const Client = v1[name] as grpc.ServiceClientConstructor;
    return new Client(connection.address, credentials, options);
  };
  const enrollment = make('Enrollment');
  const certificates = make('Certificates');
  const administration = make('Administration');
  const tokens = make('Tokens');
  const rotation = make('Rotation');
  return {
    enrollment,
    certificates,
    administration,
    tokens,
    rotation,
    close: () => {
      for (const client of [enrollment, certificates, administration, tokens, rotation]) client.close();
    },
  };
}

/** Calls a unary method and resolves with its reply (rejects with the grpc ServiceError). */
export function unary<T>(client: grpc.Client & Record<string, unknown>, method: string, request: Record<string, unknown>, deadlineMs = 30_000): Promise<T> {
  const fn = client[method];
  if (typeof fn !== 'function') return Promise.reject(new Error(`no method ${method}`));
  return new Promise((resolve, reject) => {
    (fn as (r: unknown, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, v: T) => void) => void).call(client, request, { deadline: Date.now() + deadlineMs }, (error, value) => {
      if (error !== null) reject(error);
      else resolve(value);
    });
  });
}
