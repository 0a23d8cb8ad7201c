/**
 * A real SoftHSM 2 for integration tests: one temp token directory per test run with its own
 * softhsm2.conf (SOFTHSM2_CONF), tokens initialised through PKCS#11 by credbroker's own code,
 * PINs random and kept in 0600 temp files, never on argv.
 *
 * When SoftHSM is not installed the suite fails here, loudly, with how to install it: an
 * integration suite that skips itself would let CI pass without ever touching an HSM.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Secret } from '../../src/core/index.js';
import pkcs11js from 'pkcs11js';
import { DEFAULT_MODULE_PATHS, Pkcs11Library, SOFTHSM_INSTALL_HINT, initToken } from '../../src/hsm/index.js';

/** The SoftHSM directory shared by every integration test of this run. */
export interface SoftHsmDir {
  readonly dir: string;
  readonly confPath: string;
  readonly modulePath: string;
}

/** A token made for one test file. */
export interface TestToken {
  readonly label: string;
  readonly modulePath: string;
  readonly pin: Secret;
  readonly soPin: Secret;
  /** 0600 files holding the PINs, for CLI tests. */
  readonly pinFile: string;
  readonly soPinFile: string;
}

let shared: SoftHsmDir | null = null;

/** The module path, or an Error that says how to install SoftHSM. */
export function softHsmModulePath(): string {
  const found = DEFAULT_MODULE_PATHS.find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(`SoftHSM 2 is required by the integration tests and was not found (${DEFAULT_MODULE_PATHS.join(', ')}): ${SOFTHSM_INSTALL_HINT}`);
  }
  return found;
}

/** Creates (once) the run's token directory and points SOFTHSM2_CONF at it. */
export function softHsmDir(): SoftHsmDir {
  if (shared !== null) return shared;
  const modulePath = softHsmModulePath();
  const dir = mkdtempSync(join(tmpdir(), 'credbroker-softhsm-'));
  const tokens = join(dir, 'tokens');
  const confPath = join(dir, 'softhsm2.conf');
  writeFileSync(
    confPath,
    [`directories.tokendir = ${tokens}`, 'objectstore.backend = file', 'log.level = ERROR', 'slots.removable = false', ''].join('\n'),
  );
  // The token directory must exist before C_Initialize; it holds key material, so 0700.
  mkdirSync(tokens, { mode: 0o700 });
  process.env.SOFTHSM2_CONF = confPath;
  shared = { dir, confPath, modulePath };
  process.once('exit', () => {
    rmSync(dir, { recursive: true, force: true });
  });
  return shared;
}


/** Writes a secret to a new 0600 file in the run's directory and returns its path. */
export function writeSecretFile(name: string, value: string): string {
  const path = join(softHsmDir().dir, `${name}-${randomBytes(4).toString('hex')}.pin`);
  writeFileSync(path, `${value}\n`, { mode: 0o600 });
  return path;
}

/** Initialises a fresh token with random PINs (through PKCS#11, not softhsm2-util). */
export function createTestToken(prefix: string): TestToken {
  const { modulePath } = softHsmDir();
  const label = `${prefix}-${randomBytes(3).toString('hex')}`.slice(0, 32);
  const pinValue = randomBytes(12).toString('hex');
  const soPinValue = randomBytes(12).toString('hex');
  const pin = Secret.from(pinValue, 'test');
  const soPin = Secret.from(soPinValue, 'test');
  initToken({ modulePath, label, soPin, userPin: pin });
  return {
    label,
    modulePath,
    pin,
    soPin,
    pinFile: writeSecretFile(`${label}-user`, pinValue),
    soPinFile: writeSecretFile(`${label}-so`, soPinValue),
  };
}

/**
 * Counts the C_Login calls made while `action` runs (by spying on the process's shared module):
 * proof that a refusal burned no PIN attempt, or exactly one.
 */
export async function countLogins<T>(action: () => Promise<T>): Promise<{ logins: number; result: T | undefined; error: unknown }> {
  const library = Pkcs11Library.acquire(softHsmDir().modulePath);
  const api = library.api;
  const original = api.C_Login.bind(api);
  let logins = 0;
  api.C_Login = (...args: Parameters<pkcs11js.PKCS11['C_Login']>) => {
    logins++;
    original(...args);
  };
  try {
    const result = await action();
    return { logins, result, error: undefined };
  } catch (error) {
    return { logins, result: undefined, error };
  } finally {
    api.C_Login = original;
    library.release();
  }
}
