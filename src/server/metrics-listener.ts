/**
 * The Prometheus scrape endpoint: a plain HTTP listener of its own (not the gRPC port, which is
 * TLS and per-call mTLS), serving `GET /metrics` in the text exposition format and nothing else.
 * Loopback by default (src/config/metrics-config.ts): metrics reveal the shape of the fleet.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BrokerError, silentLogger, type Logger } from '../core/index.js';
import { parseListenAddress } from '../config/index.js';

/** Where the text comes from (prom-client's Registry has this shape). */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

/** Options of {@link MetricsListener.start}. */
export interface MetricsListenerOptions {
  /** host:port (`[v6]:port` for IPv6); port 0 picks a free one. */
  readonly listen: string;
  readonly source: MetricsSource;
  readonly logger?: Logger;
}

/** Slowest request the listener waits for, in ms: a scraper that stalls does not hold a socket. */
const REQUEST_TIMEOUT_MS = 15_000;

/** The running listener. */
export class MetricsListener {
  /** The bound port (the chosen one when the config said 0). */
  readonly port: number;
  readonly #server: Server;

  private constructor(server: Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  /**
   * Binds and serves.
   * @throws BrokerError `metrics.listen_invalid` for an address that is not host:port;
   *   `metrics.listen_in_use` when something already listens there; `metrics.listen_denied`
   *   (privileged port); `metrics.listen_unavailable` (not an address of this host);
   *   `metrics.listen_failed` otherwise. Each message names the address and what to do.
   */
  static async start(options: MetricsListenerOptions): Promise<MetricsListener> {
    const logger = options.logger ?? silentLogger;
    const address = parseListenAddress(options.listen);
    if (address === null) {
      throw new BrokerError('invalid', { code: 'metrics.listen_invalid', publicMessage: `metrics.listen "${options.listen}" is not host:port (e.g. 127.0.0.1:9464)` });
    }
    const server = createServer((request, response) => {
      handle(request, response, options.source, logger);
    });
    server.requestTimeout = REQUEST_TIMEOUT_MS;
    server.headersTimeout = REQUEST_TIMEOUT_MS;
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      const onError = (error: NodeJS.ErrnoException): void => {
        reject(listenError(options.listen, error));
      };
      server.once('error', onError);
      server.listen({ host: address.host, port: address.port, exclusive: true }, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (error) => {
      logger.error({ error: String(error) }, 'metrics listener error');
    });
    const port = (server.address() as AddressInfo).port;
    logger.info({ listen: options.listen, port }, 'metrics on http GET /metrics');
    return new MetricsListener(server, port);
  }

  /** Stops listening and closes open connections (a scrape in flight is cut). Idempotent. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (!this.#server.listening) {
        resolve();
        return;
      }
      this.#server.close(() => {
        resolve();
      });
      this.#server.closeAllConnections();
    });
  }
}

function handle(request: IncomingMessage, response: ServerResponse, source: MetricsSource, logger: Logger): void {
  const path = (request.url ?? '').split('?')[0];
  response.setHeader('X-Content-Type-Options', 'nosniff');
  if (path !== '/metrics') {
    reply(response, 404, 'not found: this listener serves GET /metrics only\n');
    return;
  }
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    reply(response, 405, 'method not allowed: use GET /metrics\n');
    return;
  }
  source.metrics().then(
    (text) => {
      response.writeHead(200, { 'Content-Type': source.contentType, 'Cache-Control': 'no-store' });
      response.end(text);
    },
    (error: unknown) => {
      logger.error({ error: String(error) }, 'metrics collection failed');
      reply(response, 500, 'metrics collection failed; see the broker log\n');
    },
  );
}

function reply(response: ServerResponse, status: number, text: string): void {
  response.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  response.end(text);
}

function listenError(listen: string, error: NodeJS.ErrnoException): BrokerError {
  const what = 'choose another metrics.listen in the config, or set metrics.enabled: false';
  switch (error.code) {
    case 'EADDRINUSE':
      return new BrokerError('conflict', {
        code: 'metrics.listen_in_use',
        publicMessage: `the metrics listener cannot bind ${listen}: the address is already in use (another credbroker or exporter?). Stop what listens there, ${what}`,
        cause: error,
      });
    case 'EACCES':
      return new BrokerError('conflict', {
        code: 'metrics.listen_denied',
        publicMessage: `the metrics listener may not bind ${listen}: ports below 1024 need privileges; ${what}`,
        cause: error,
      });
    case 'EADDRNOTAVAIL':
      return new BrokerError('invalid', {
        code: 'metrics.listen_unavailable',
        publicMessage: `the metrics listener cannot bind ${listen}: that is not an address of this host; ${what}`,
        cause: error,
      });
    default:
      return new BrokerError('conflict', {
        code: 'metrics.listen_failed',
        publicMessage: `the metrics listener cannot bind ${listen} (${error.code ?? 'error'}); ${what}`,
        logMessage: `metrics listener on ${listen}: ${error.message}`,
        cause: error,
      });
  }
}
