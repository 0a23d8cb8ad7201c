/**
 * The process logger: pino JSON lines on stderr, with a redaction list as a second line of
 * defence (secrets are never passed to the logger in the first place).
 */
import { pino, type DestinationStream } from 'pino';
import { scrubSecrets, scrubValue, type Logger } from '../core/index.js';

/** Field paths pino replaces with `[redacted]` wherever they appear. */
export const REDACTED_PATHS: readonly string[] = Object.freeze([
  'pin',
  '*.pin',
  'soPin',
  '*.soPin',
  'joinToken',
  '*.joinToken',
  'token',
  '*.token',
  'privateKey',
  '*.privateKey',
  'csr',
  '*.csr',
  'password',
  '*.password',
  'secret',
  '*.secret',
  'jws',
  '*.jws',
  'jwt',
  '*.jwt',
  'accessToken',
  '*.accessToken',
  'keyPem',
  '*.keyPem',
  'authorization',
  '*.authorization',
]);

/**
 * A pino logger at `level` writing JSON to stderr (or `destination`): field paths of
 * {@link REDACTED_PATHS} are censored, and every string of a line — fields and message — is
 * scrubbed of anything that looks like a join token, a JWS or a private key or CSR in PEM.
 */
export function createLogger(level: string = process.env.CREDBROKER_LOG_LEVEL ?? 'info', destination: DestinationStream = pino.destination(2)): Logger {
  return pino(
    {
      level,
      base: { service: 'credbroker' },
      redact: { paths: [...REDACTED_PATHS], censor: '[redacted]' },
      formatters: { log: (object) => scrubValue(object) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map((arg) => (typeof arg === 'string' ? scrubSecrets(arg) : arg)) as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}
