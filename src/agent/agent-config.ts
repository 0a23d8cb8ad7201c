/**
 * The config file of `credbroker agent`. Strict: unknown keys are errors (named with their
 * path), every problem is reported at once, the result is frozen. Relative paths are relative
 * to the config file's folder.
 *
 * ```yaml
 * broker:
 *   address: broker.internal:8443        # host:port of the broker
 *   serverName: broker.internal          # optional; name expected in the broker's certificate
 *   trustBundle: ./root.pem              # bootstrap root(s) that authenticate the broker (PEM)
 * joinToken: { file: ./join-token }      # secret source: file (mode 0600) | fd; never argv or env.
 *                                        # Read only when there is no valid certificate (first
 *                                        # start, or after expiry/revocation); the file is
 *                                        # deleted after a successful enrollment
 * keyType: P-256                         # P-256 (default) | P-384 | Ed25519; a new key per renewal
 * ttl: 1h                                # optional requested lifetime (default: the policy's)
 * dnsNames: [import.pipeline.internal]   # optional SANs to request (policy must allow them)
 * ipAddresses: [10.0.0.7]                # optional
 * output:
 *   dir: /run/credbroker                 # created (0755) if missing
 *   key: key.pem                         # default key.pem, mode 0600
 *   certificate: cert.pem                # default cert.pem (the leaf), 0644
 *   chain: chain.pem                     # default chain.pem (intermediates), 0644
 *   trustBundle: bundle.pem              # default bundle.pem (roots to trust for peers), 0644
 *   pkcs12:                              # optional: key + certificate + chain, mode 0600
 *     path: identity.p12                 # (written with `openssl pkcs12 -export`; the password
 *     password: { file: ./p12.pass }     #  goes to openssl through a pipe, never argv)
 * renewal:
 *   at: 0.6667                           # fraction of the lifetime, default 2/3
 *   jitter: 0.1                          # up to this fraction earlier, default 0.1 (< at)
 *   backoffInitial: 1s                   # first retry delay, default 1s
 *   backoffMax: 60s                      # retry delay cap, default 60s
 *   warnBefore: 10m                      # warn when still not renewed this long before expiry
 * reload:                                # optional; run after every rotation, one of:
 *   command: [systemctl, reload, media-import]   # argv, run without a shell
 *   timeout: 30s                                 # default 30s, then SIGKILL
 *   # signal: SIGHUP                             # or signal the process whose pid is in
 *   # pidFile: /run/media-import.pid             # pidFile
 * watch: true                            # keep a Rotation/Watch stream open, default true
 * ```
 */
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { parseDurationMs } from '../core/index.js';
import { durationSchema, secretSource, type DeepReadonly, type SecretSource } from '../config/index.js';
import { SERVICE_KEY_TYPES, type ServiceKeyType } from './enroll.js';
import { DEFAULT_RENEWAL_TIMING, type RenewalTiming } from './renewal-plan.js';

/** Signals the reload hook may send. */
export const RELOAD_SIGNALS = Object.freeze(['SIGHUP', 'SIGUSR1', 'SIGUSR2', 'SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGWINCH'] as const);

/** Longest certificate lifetime a request may name (the broker's hard cap, DESIGN.md invariant 4). */
const MAX_TTL_MS = 86_400_000;

/** A secret source for the unattended agent: file or fd (a prompt would wait for nobody). */
function unattendedSecret(description: string) {
  return secretSource(description).refine((source: SecretSource) => !('prompt' in source), {
    error: `the agent runs unattended: give the ${description} as { file: <path> } (mode 0600) or { fd: <n> }, not as a prompt`,
  });
}

const fraction = (what: string) =>
  z.number({ error: `expected ${what} as a number between 0 and 1, e.g. 0.6667` }).gt(0, { error: `expected ${what} > 0` }).lt(1, { error: `expected ${what} < 1` });

/** The schema of the agent's config file. */
export const agentConfigSchema = z
  .strictObject({
    broker: z.strictObject({
      /** host:port */
      address: z.string().regex(/^[^\s/]+:\d{1,5}$/, { error: 'expected host:port, e.g. broker.internal:8443' }),
      serverName: z.string().min(1).optional(),
      /** PEM file of the root(s) that authenticate the broker before the first enrollment. */
      trustBundle: z.string().min(1),
    }),
    joinToken: unattendedSecret('join token').optional(),
    keyType: z.enum(SERVICE_KEY_TYPES as readonly [ServiceKeyType, ...ServiceKeyType[]]).default('P-256'),
    ttl: durationSchema.refine((value) => parseDurationMs(value) <= MAX_TTL_MS && parseDurationMs(value) % 1000 === 0, { error: 'expected whole seconds, at most 24h' }).optional(),
    dnsNames: z.array(z.string().min(1)).optional(),
    ipAddresses: z.array(z.string().min(1)).optional(),
    output: z.strictObject({
      dir: z.string().min(1),
      key: z.string().min(1).default('key.pem'),
      certificate: z.string().min(1).default('cert.pem'),
      chain: z.string().min(1).default('chain.pem'),
      trustBundle: z.string().min(1).default('bundle.pem'),
      pkcs12: z.strictObject({ path: z.string().min(1), password: unattendedSecret('PKCS#12 password') }).optional(),
    }),
    renewal: z
      .strictObject({
        at: fraction('renewal.at').default(DEFAULT_RENEWAL_TIMING.renewAtFraction),
        jitter: z.number().min(0, { error: 'expected jitter >= 0' }).lt(1).default(DEFAULT_RENEWAL_TIMING.jitterFraction),
        backoffInitial: durationSchema.default('1s'),
        backoffMax: durationSchema.default('60s'),
        warnBefore: durationSchema.default('10m'),
      })
      .check((ctx) => {
        const value = ctx.value;
        if (value.jitter >= value.at) ctx.issues.push({ code: 'custom', message: `expected jitter (${value.jitter}) below at (${value.at})`, input: value.jitter, path: ['jitter'] });
        if (parseDurationMs(value.backoffInitial) > parseDurationMs(value.backoffMax)) {
          ctx.issues.push({ code: 'custom', message: `expected backoffMax (${value.backoffMax}) >= backoffInitial (${value.backoffInitial})`, input: value.backoffMax, path: ['backoffMax'] });
        }
      })
      .default({ at: DEFAULT_RENEWAL_TIMING.renewAtFraction, jitter: DEFAULT_RENEWAL_TIMING.jitterFraction, backoffInitial: '1s', backoffMax: '60s', warnBefore: '10m' }),
    reload: z
      .strictObject({
        /** argv of a command run without a shell after each rotation. */
        command: z.array(z.string().min(1)).min(1).optional(),
        timeout: durationSchema.optional(),
        signal: z.enum(RELOAD_SIGNALS).optional(),
        pidFile: z.string().min(1).optional(),
      })
      .check((ctx) => {
        const value = ctx.value;
        const issue = (message: string, path: string): void => {
          ctx.issues.push({ code: 'custom', message, input: value, path: [path] });
        };
        if ((value.command === undefined) === (value.signal === undefined)) {
          issue('expected exactly one of command (argv list) or signal (with pidFile)', value.command === undefined ? 'command' : 'signal');
        }
        if (value.signal !== undefined && value.pidFile === undefined) issue('missing: expected the pidFile of the process to signal', 'pidFile');
        if (value.signal === undefined && value.pidFile !== undefined) issue('pidFile goes with signal', 'pidFile');
        if (value.command === undefined && value.timeout !== undefined) issue('timeout goes with command', 'timeout');
      })
      .optional(),
    watch: z.boolean().default(true),
  })
  .describe('credbroker agent configuration');

/** The validated agent configuration, defaults applied, read-only. */
export type AgentConfig = DeepReadonly<z.output<typeof agentConfigSchema>>;

/** What the reload hook does after each rotation. */
export type ReloadAction = { readonly command: readonly string[]; readonly timeoutMs: number } | { readonly signal: NodeJS.Signals; readonly pidFile: string };

/** The agent's settings: absolute paths, milliseconds, secret sources still unread. */
export interface AgentSettings {
  readonly broker: { readonly address: string; readonly serverName?: string; readonly trustBundleFile: string };
  readonly joinToken?: SecretSource;
  readonly keyType: ServiceKeyType;
  readonly ttlSeconds: number;
  readonly names: { readonly dnsNames: readonly string[]; readonly ipAddresses: readonly string[] };
  readonly files: {
    readonly dir: string;
    readonly key: string;
    readonly certificate: string;
    readonly chain: string;
    readonly trustBundle: string;
    readonly pkcs12?: { readonly path: string; readonly password: SecretSource };
  };
  readonly timing: RenewalTiming;
  readonly reload?: ReloadAction;
  readonly watch: boolean;
}

/** Default timeout of a reload command. */
export const DEFAULT_RELOAD_TIMEOUT_MS = 30_000;

/**
 * Turns a parsed config into settings: paths made absolute against `baseDir` (the config file's
 * folder; output file names against `output.dir`), durations in milliseconds.
 */
export function agentSettings(config: AgentConfig, baseDir: string): AgentSettings {
  const path = (value: string, base = baseDir): string => (isAbsolute(value) ? value : resolve(base, value));
  const dir = path(config.output.dir);
  const reload = config.reload;
  return Object.freeze({
    broker: { address: config.broker.address, trustBundleFile: path(config.broker.trustBundle), ...(config.broker.serverName === undefined ? {} : { serverName: config.broker.serverName }) },
    ...(config.joinToken === undefined ? {} : { joinToken: config.joinToken }),
    keyType: config.keyType,
    ttlSeconds: config.ttl === undefined ? 0 : parseDurationMs(config.ttl) / 1000,
    names: { dnsNames: config.dnsNames ?? [], ipAddresses: config.ipAddresses ?? [] },
    files: {
      dir,
      key: path(config.output.key, dir),
      certificate: path(config.output.certificate, dir),
      chain: path(config.output.chain, dir),
      trustBundle: path(config.output.trustBundle, dir),
      ...(config.output.pkcs12 === undefined ? {} : { pkcs12: { path: path(config.output.pkcs12.path, dir), password: config.output.pkcs12.password } }),
    },
    timing: {
      renewAtFraction: config.renewal.at,
      jitterFraction: config.renewal.jitter,
      backoffInitialMs: parseDurationMs(config.renewal.backoffInitial),
      backoffMaxMs: parseDurationMs(config.renewal.backoffMax),
      warnBeforeMs: parseDurationMs(config.renewal.warnBefore),
    },
    ...(reload === undefined
      ? {}
      : {
          reload:
            reload.command !== undefined
              ? { command: [...reload.command], timeoutMs: reload.timeout === undefined ? DEFAULT_RELOAD_TIMEOUT_MS : parseDurationMs(reload.timeout) }
              : { signal: reload.signal ?? 'SIGHUP', pidFile: path(reload.pidFile ?? '') },
        }),
    watch: config.watch,
  });
}
