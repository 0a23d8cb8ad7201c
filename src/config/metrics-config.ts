/**
 * The `metrics` section: where `credbroker serve` answers Prometheus scrapes (`GET /metrics`,
 * plain HTTP, text exposition format). Metrics reveal the shape of the fleet (audiences, key
 * labels, CA serials, how many identities watch), so the listener stays on the loopback
 * interface unless the operator says otherwise.
 *
 * ```yaml
 * metrics:                    # optional; absent = enabled on 127.0.0.1:9464
 *   enabled: true             # false: no listener (the broker still counts in memory)
 *   listen: 127.0.0.1:9464    # host:port, [v6]:port; port 0 picks a free one
 *   allowRemote: false        # true is needed for any address that is not loopback
 * ```
 */
import { z } from 'zod';
import { parseIpAddress } from '../core/index.js';
import type { DeepReadonly } from './deep-freeze.js';

/** Where the metrics listener binds when the config says nothing. */
export const DEFAULT_METRICS_LISTEN = '127.0.0.1:9464';

/** A `host:port` split: the host without IPv6 brackets. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

/**
 * Splits `host:port` (`127.0.0.1:9464`, `localhost:9464`, `[::1]:9464`) into host and port.
 * Returns null unless the port is an integer from 0 to 65535 and the host is an IP address
 * (IPv6 in brackets) or a DNS name.
 */
export function parseListenAddress(text: string): ListenAddress | null {
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^[\]:]+)):(0|[1-9]\d{0,4})$/.exec(text);
  if (match === null) return null;
  const port = Number(match[3]);
  if (port > 65_535) return null;
  const v6 = match[1];
  if (v6 !== undefined) return parseIpAddress(v6)?.length === 16 ? { host: v6, port } : null;
  const host = match[2] ?? '';
  if (parseIpAddress(host) !== null) return { host, port };
  return /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(host) ? { host, port } : null;
}

/**
 * True for hosts that reach this machine only: `localhost`, 127.0.0.0/8, `::1` and
 * IPv4-mapped 127.x. Wildcards (`0.0.0.0`, `::`) and every other name are not.
 */
export function isLoopbackHost(host: string): boolean {
  if (host.toLowerCase() === 'localhost') return true;
  const bytes = parseIpAddress(host);
  if (bytes === null) return false;
  if (bytes.length === 4) return bytes[0] === 127;
  const isV4Mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (isV4Mapped) return bytes[12] === 127;
  return bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1;
}

/** The schema of the `metrics` section (strict: unknown keys are errors). */
export const metricsConfigSchema = z
  .strictObject({
    /** Open the metrics listener. Default true. */
    enabled: z.boolean().default(true),
    /** host:port of the HTTP listener; port 0 picks a free one. Default 127.0.0.1:9464. */
    listen: z
      .string()
      .min(1)
      .default(DEFAULT_METRICS_LISTEN)
      .refine((text) => parseListenAddress(text) !== null, {
        error: 'expected host:port (e.g. 127.0.0.1:9464 or [::1]:9464), port 0 to 65535',
      }),
    /**
     * Allow a listen address that is not loopback. Metrics reveal audiences, key labels, CA
     * serials and fleet figures: expose them beyond this host only behind a boundary you trust.
     */
    allowRemote: z.boolean().default(false),
  })
  .superRefine((metrics, ctx) => {
    const address = parseListenAddress(metrics.listen);
    if (address !== null && !metrics.allowRemote && !isLoopbackHost(address.host)) {
      ctx.addIssue({
        code: 'custom',
        path: ['listen'],
        message: `${metrics.listen} is not a loopback address: metrics reveal identities, so they stay on this host (127.0.0.1, ::1, localhost) unless metrics.allowRemote is true`,
      });
    }
  })
  .describe('Prometheus metrics listener');

/** The validated `metrics` section, defaults applied, read-only. */
export type MetricsConfig = DeepReadonly<z.output<typeof metricsConfigSchema>>;
