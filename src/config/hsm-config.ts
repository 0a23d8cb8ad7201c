/**
 * The `hsm` section: which PKCS#11 module and token hold the online keys, how to log in, and how
 * signing uses sessions. Opening the module and the token is src/hsm's job; this is only the
 * validated description.
 *
 * ```yaml
 * hsm:
 *   module: /usr/lib/softhsm/libsofthsm2.so   # optional; absent = default search (src/hsm)
 *   token: credbroker-online                   # token label, 1..32 bytes
 *   pin: { file: ./online.pin }                # secret source (file 0600 | fd | prompt)
 *   sessions: 4                                # session pool size, 1..64, default 4
 *   signMode: auto                             # auto | sync | async, default auto
 *   verifyAfterSign: true                      # default true
 * ```
 */
import { isAbsolute } from 'node:path';
import { z } from 'zod';
import type { DeepReadonly } from './deep-freeze.js';
import { secretSource } from './secret-source.js';

/** PKCS#11 token labels are 32 bytes of UTF-8, padded with spaces (CK_TOKEN_INFO.label). */
export const MAX_TOKEN_LABEL_BYTES = 32;
/** Default size of the HSM session pool. */
export const DEFAULT_HSM_SESSIONS = 4;
/** Largest session pool accepted; HSMs limit sessions per application. */
export const MAX_HSM_SESSIONS = 64;

/** How signing calls reach the HSM: `sync` (C_Sign on the main thread, fastest for P-256 on
 * SoftHSM), `async` (worker threads, several sessions in parallel; for slow key types or network
 * HSMs) or `auto` (src/hsm chooses per key type). */
export const HSM_SIGN_MODES = Object.freeze(['auto', 'sync', 'async'] as const);

/** The schema of the `hsm` section (strict: unknown keys are errors). */
export const hsmConfigSchema = z
  .strictObject({
    /**
     * Path of the PKCS#11 module (shared library). An absolute path, or a bare file name that the
     * dynamic loader searches for; a relative path with folders is refused because it would depend
     * on the working directory. Absent: src/hsm searches the usual SoftHSM locations.
     */
    module: z
      .string()
      .min(1)
      .refine((path) => isAbsolute(path) || !path.includes('/'), {
        error: 'expected an absolute path to the PKCS#11 module, or a bare library file name',
      })
      .optional(),
    /** Label of the token that holds the online keys. */
    token: z
      .string()
      .min(1)
      .refine((label) => Buffer.byteLength(label, 'utf8') <= MAX_TOKEN_LABEL_BYTES, {
        error: (issue) =>
          `expected a token label of at most ${MAX_TOKEN_LABEL_BYTES} bytes (PKCS#11 limit), got ${Buffer.byteLength(String(issue.input), 'utf8')} bytes`,
      })
      .refine((label) => label.trim() === label, {
        error: 'expected no leading or trailing spaces (PKCS#11 pads labels with spaces)',
      }),
    /** Where the user PIN of the token comes from. */
    pin: secretSource('HSM user PIN'),
    /** Where the security officer PIN comes from; only token initialisation needs it. */
    soPin: secretSource('HSM security officer PIN').optional(),
    /** Size of the session pool (concurrent signing operations). */
    sessions: z.int().min(1).max(MAX_HSM_SESSIONS).default(DEFAULT_HSM_SESSIONS),
    /** See {@link HSM_SIGN_MODES}. */
    signMode: z.enum(HSM_SIGN_MODES).default('auto'),
    /** Verify every HSM signature in software before using it (≈ 55 µs for P-256). */
    verifyAfterSign: z.boolean().default(true),
  })
  .describe('HSM (PKCS#11) module, token, login and signing sessions');

/** The validated `hsm` section, defaults applied, read-only. */
export type HsmConfig = DeepReadonly<z.output<typeof hsmConfigSchema>>;
