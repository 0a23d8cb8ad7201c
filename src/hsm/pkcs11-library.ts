/**
 * Loading and initialising a PKCS#11 module.
 *
 * A module is initialised once per process (C_Initialize twice fails), so libraries are shared
 * by path and reference-counted: the last {@link Pkcs11Library.release} finalises and unloads.
 * Initialisation always passes CKF_OS_LOCKING_OK: without it SoftHSM turns its own locking off
 * and concurrent sessions (our async signing) corrupt each other.
 */
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import pkcs11js from 'pkcs11js';
import { BrokerError } from '../core/index.js';
import { ckrName } from './hsm-error.js';

/** Where SoftHSM 2 usually installs its module, searched in order when no path is configured. */
export const DEFAULT_MODULE_PATHS: readonly string[] = Object.freeze([
  '/usr/lib/softhsm/libsofthsm2.so', // Debian, Ubuntu
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib64/pkcs11/libsofthsm2.so', // Fedora, RHEL
  '/usr/lib64/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so', // source builds
  '/opt/homebrew/lib/softhsm/libsofthsm2.so', // macOS
  '/usr/local/opt/softhsm/lib/softhsm/libsofthsm2.so',
]);

/** How to install SoftHSM, for error messages. */
export const SOFTHSM_INSTALL_HINT =
  'install SoftHSM 2 (Debian/Ubuntu: apt-get install -y softhsm2 opensc; Fedora: dnf install softhsm; macOS: brew install softhsm) or set hsm.module to your PKCS#11 module';

/**
 * Chooses the module path: the configured one (a path must exist and be readable; a bare file
 * name is searched by the dynamic loader), else the first default that exists.
 * @throws BrokerError `hsm.module_not_found` naming the path or the paths searched
 */
export function resolveModulePath(configured?: string): string {
  if (configured !== undefined) {
    // A bare file name (`libsofthsm2.so`) is left to the dynamic loader's search path.
    if (!configured.includes('/')) return configured;
    try {
      accessSync(configured, fsConstants.R_OK);
    } catch (error) {
      throw new BrokerError('unavailable', {
        code: 'hsm.module_not_found',
        publicMessage: `PKCS#11 module ${configured} cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}); check hsm.module`,
        cause: error,
        retryable: false,
      });
    }
    return configured;
  }
  const found = DEFAULT_MODULE_PATHS.find((path) => existsSync(path));
  if (found === undefined) {
    throw new BrokerError('unavailable', {
      code: 'hsm.module_not_found',
      publicMessage: `no PKCS#11 module configured and SoftHSM 2 not found in ${DEFAULT_MODULE_PATHS.join(', ')}: ${SOFTHSM_INSTALL_HINT}`,
      retryable: false,
    });
  }
  return found;
}

interface Loaded {
  readonly api: pkcs11js.PKCS11;
  references: number;
}

const loaded = new Map<string, Loaded>();

/** A loaded, initialised PKCS#11 module shared by everyone in the process who opened its path. */
export class Pkcs11Library {
  readonly path: string;
  readonly api: pkcs11js.PKCS11;
  #released = false;

  private constructor(path: string, api: pkcs11js.PKCS11) {
    this.path = path;
    this.api = api;
  }

  /**
   * Loads and initialises the module at `path` (or shares the already loaded one).
   * @throws BrokerError `hsm.module_load_failed` when the file is not a PKCS#11 module
   */
  static acquire(path: string): Pkcs11Library {
    let entry = loaded.get(path);
    if (entry === undefined) {
      const api = new pkcs11js.PKCS11();
      try {
        api.load(path);
      } catch (error) {
        throw new BrokerError('unavailable', {
          code: 'hsm.module_load_failed',
          publicMessage: `cannot load PKCS#11 module ${path}: ${(error as Error).message}`,
          cause: error,
          retryable: false,
        });
      }
      try {
        api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
      } catch (error) {
        if (ckrName(error) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') {
          safely(() => {
            api.close();
          });
          throw new BrokerError('unavailable', {
            code: 'hsm.module_init_failed',
            publicMessage: `PKCS#11 module ${path} failed to initialise; check its configuration (for SoftHSM: SOFTHSM2_CONF and its tokendir)`,
            logMessage: `C_Initialize on ${path} failed: ${ckrName(error) ?? String(error)}`,
            cause: error,
            retryable: false,
          });
        }
      }
      entry = { api, references: 0 };
      loaded.set(path, entry);
    }
    entry.references++;
    return new Pkcs11Library(path, entry.api);
  }

  /**
   * Finalises and initialises the module again, so it rescans its slots (SoftHSM, for one, finds
   * tokens only at C_Initialize: a token that went away and came back is invisible until then).
   * Only the sole user of the module may do it — every session of every user is closed by it.
   * @returns false (and does nothing) when others share the module or it was released
   */
  reinitialize(): boolean {
    const entry = loaded.get(this.path);
    if (this.#released || entry === undefined || entry.references !== 1) return false;
    safely(() => {
      entry.api.C_Finalize();
    });
    try {
      entry.api.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (error) {
      if (ckrName(error) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') return false;
    }
    return true;
  }

  /** Drops this reference; the last one finalises and unloads the module. Idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    const entry = loaded.get(this.path);
    if (entry === undefined) return;
    entry.references--;
    if (entry.references > 0) return;
    loaded.delete(this.path);
    safely(() => {
      entry.api.C_Finalize();
    });
    safely(() => {
      entry.api.close();
    });
  }
}

function safely(action: () => void): void {
  try {
    action();
  } catch {
    // Finalising a module that is already gone has nothing left to report.
  }
}
