/**
 * What the issue and tokens benchmarks (issue.ts, tokens.ts) and their client processes
 * (issue-client.ts) say to each other over the fork IPC channel (`serialization: 'advanced'`,
 * so typed arrays cross as such), and the echo RPC that both sides of the transport
 * measurement use.
 */
import type * as grpc from '@grpc/grpc-js';

/** Where a client process sends its calls. */
export type Target =
  /** (a) the transport's ceiling: a unary echo over mutual TLS, no broker work. */
  | {
      readonly kind: 'echo';
      readonly address: string;
      readonly serverName: string;
      readonly rootPem: string;
      readonly keyPem: string;
      readonly certificateChainPem: string;
      /** Size of the echoed payload, bytes. */
      readonly payloadBytes: number;
    }
  /** (b) `Certificates/Renew` on a real broker, as an enrolled service (one fresh CSR per call). */
  | {
      readonly kind: 'renew';
      readonly address: string;
      readonly serverName: string;
      readonly rootPem: string;
      readonly keyPem: string;
      readonly certificateChainPem: string;
    }
  /**
   * `Tokens/IssueToken` on a real broker, as an enrolled service (tokens benchmark, tokens.ts):
   * one token per call, no CSR; the reply must carry a token, bound if `bindToCertificate`.
   */
  | {
      readonly kind: 'issue-token';
      readonly address: string;
      readonly serverName: string;
      readonly rootPem: string;
      readonly keyPem: string;
      readonly certificateChainPem: string;
      /** The one audience asked for, e.g. `storage.source`. */
      readonly audience: string;
      readonly scopes: readonly string[];
      /** Requested lifetime, s; 0 = the identity's default. */
      readonly ttlSeconds: number;
      readonly bindToCertificate: boolean;
    }
  /** (c) `cfssl serve`'s sign endpoint (HTTP/1.1 JSON), the same kind of CSRs. */
  | {
      readonly kind: 'cfssl';
      /** Base URL, e.g. http://127.0.0.1:8888 */
      readonly url: string;
      /** `hosts` of the sign request: the SANs cfssl puts in (a SPIFFE ID becomes a URI SAN). */
      readonly hosts: readonly string[];
    };

/** Parent → client process. Each command gets exactly one {@link Reply}, in order. */
export type Command =
  /** Generate keys and CSRs (untimed) until at least `available` unused ones are in the pool. */
  | { readonly type: 'pool'; readonly available: number }
  /** Open a channel to `target` and make one call to prove it works. */
  | { readonly type: 'connect'; readonly target: Target }
  /**
   * Call the connected target with `concurrency` calls in flight from now (warm-up) until
   * `startAtEpochMs + durationMs`; calls that complete inside [startAtEpochMs, end] are measured.
   */
  | { readonly type: 'run'; readonly concurrency: number; readonly startAtEpochMs: number; readonly durationMs: number }
  /** Close channels and exit. */
  | { readonly type: 'exit' };

/** What one client process measured in one run. */
export interface RunResult {
  /** Calls that completed successfully inside the window. */
  readonly calls: number;
  /** Failed calls (warm-up included). */
  readonly errors: number;
  /** The first failure's message ('' if none). */
  readonly firstError: string;
  /** The window actually measured, ms (shorter than asked if the CSR pool ran out). */
  readonly windowMs: number;
  /** Latency of each measured call, ms. */
  readonly latenciesMs: Float64Array;
  /** CPU time the client process used during the window (user + system), ms. */
  readonly cpuMs: number;
  /** True if the run stopped early because no unused CSR was left. */
  readonly poolExhausted: boolean;
}

/** Client process → parent. */
export type Reply =
  | { readonly type: 'ready' }
  | { readonly type: 'pool'; readonly available: number; readonly generated: number; readonly ms: number }
  | { readonly type: 'connected' }
  | { readonly type: 'run'; readonly result: RunResult }
  | { readonly type: 'failed'; readonly message: string };

/** Full method path of the echo RPC (no .proto: raw bytes in, the same bytes out). */
export const ECHO_PATH = '/credbroker.bench.Echo/Echo';

const asIs = (bytes: Buffer): Buffer => bytes;

/** The echo service: one unary method whose messages are raw bytes. */
export const ECHO_SERVICE: grpc.ServiceDefinition = {
  Echo: {
    path: ECHO_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: asIs,
    requestDeserialize: asIs,
    responseSerialize: asIs,
    responseDeserialize: asIs,
  },
};

/** Identity (de)serializer for raw-byte messages. */
export const rawBytes = asIs;
