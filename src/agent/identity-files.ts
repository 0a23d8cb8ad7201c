/**
 * The agent's files: the key (0600), certificate, chain and trust bundle (0644), and optionally
 * a PKCS#12 bundle (0600), each written atomically (temp file, fsync, rename), so a service
 * reading them never sees half a file. Reading them back at start lets a restarted agent keep
 * its certificate instead of spending a join token.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { BrokerError, type Logger, type Secret } from '../core/index.js';
import { writeFileAtomically } from './enroll.js';
import { ServiceIdentity } from './service-identity.js';

/** Where the files go (absolute paths). */
export interface IdentityFilePaths {
  readonly dir: string;
  readonly key: string;
  readonly certificate: string;
  readonly chain: string;
  readonly trustBundle: string;
  readonly pkcs12?: { readonly path: string };
}

/** Mode of the key and PKCS#12 files. */
export const KEY_FILE_MODE = 0o600;
/** Mode of certificates and bundles (public). */
export const PUBLIC_FILE_MODE = 0o644;
/** How long `openssl pkcs12 -export` may take. */
export const PKCS12_TIMEOUT_MS = 30_000;

/**
 * Reads an identity an earlier run wrote. A key file readable by others is tightened to 0600
 * (with a warning). Returns null, saying why in the log, when the files are missing or do not
 * make a usable identity (then the agent enrolls).
 */
export function loadIdentityFiles(paths: IdentityFilePaths, logger: Logger): ServiceIdentity | null {
  let pems: { privateKeyPem: string; certificatePem: string; chainPem: string; trustBundlePem: string };
  try {
    const keyMode = statSync(paths.key).mode & 0o777;
    if ((keyMode & 0o077) !== 0) {
      chmodSync(paths.key, KEY_FILE_MODE);
      logger.warn({ file: paths.key, mode: keyMode.toString(8).padStart(4, '0') }, 'the key file was readable by others; set to 0600 (consider the key exposed and revoking the certificate)');
    }
    pems = {
      privateKeyPem: readFileSync(paths.key, 'utf8'),
      certificatePem: readFileSync(paths.certificate, 'utf8'),
      chainPem: readOptional(paths.chain),
      trustBundlePem: readOptional(paths.trustBundle),
    };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') logger.info({ dir: paths.dir }, 'no certificate from an earlier run');
    else logger.warn({ dir: paths.dir, error: error instanceof Error ? error.message : String(error) }, 'the files of an earlier run cannot be read; enrolling afresh');
    return null;
  }
  try {
    return ServiceIdentity.fromPems(pems);
  } catch (error) {
    logger.warn({ dir: paths.dir, error: error instanceof BrokerError ? error.publicMessage : String(error) }, 'the files of an earlier run are not a usable identity; enrolling afresh');
    return null;
  }
}

/**
 * Writes the identity's files atomically: key (0600), certificate, chain, trust bundle (0644),
 * then the PKCS#12 file (0600) if asked for. The folder is created (0755) if missing.
 * @throws BrokerError unavailable `agent.write` naming the file and the OS reason
 */
export async function writeIdentityFiles(paths: IdentityFilePaths, identity: ServiceIdentity, pkcs12Password?: Secret): Promise<void> {
  const write = (file: string, data: string | Uint8Array, mode: number): void => {
    try {
      writeFileAtomically(file, data, mode);
    } catch (error) {
      throw new BrokerError('unavailable', { code: 'agent.write', publicMessage: `cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`, cause: error });
    }
  };
  try {
    mkdirSync(paths.dir, { recursive: true, mode: 0o755 });
  } catch (error) {
    throw new BrokerError('unavailable', { code: 'agent.write', publicMessage: `cannot create ${paths.dir}: ${error instanceof Error ? error.message : String(error)}`, cause: error });
  }
  write(paths.key, identity.privateKeyPem(), KEY_FILE_MODE);
  write(paths.certificate, identity.certificatePem, PUBLIC_FILE_MODE);
  write(paths.chain, identity.chainPem, PUBLIC_FILE_MODE);
  write(paths.trustBundle, identity.trustBundlePem, PUBLIC_FILE_MODE);
  if (paths.pkcs12 !== undefined && pkcs12Password !== undefined) {
    const bundle = await exportPkcs12(paths, identity, pkcs12Password);
    write(paths.pkcs12.path, bundle, KEY_FILE_MODE);
  }
}

/** Writes only the trust bundle (after TRUST_BUNDLE_CHANGED). */
export function writeTrustBundleFile(paths: IdentityFilePaths, identity: ServiceIdentity): void {
  try {
    writeFileAtomically(paths.trustBundle, identity.trustBundlePem, PUBLIC_FILE_MODE);
  } catch (error) {
    throw new BrokerError('unavailable', { code: 'agent.write', publicMessage: `cannot write ${paths.trustBundle}: ${error instanceof Error ? error.message : String(error)}`, cause: error });
  }
}

/**
 * Builds the PKCS#12 bundle with `openssl pkcs12 -export` from the key and certificate files
 * just written. The password reaches openssl through a pipe on its fd 3 (`-passout fd:3`),
 * never argv or the environment; the bundle comes back on stdout, so it is written (0600,
 * atomically) by us and never lies around with openssl's default mode.
 */
function exportPkcs12(paths: IdentityFilePaths, identity: ServiceIdentity, password: Secret): Promise<Buffer> {
  const args = ['pkcs12', '-export', '-inkey', paths.key, '-in', paths.certificate, '-name', identity.spiffeId, '-passout', 'fd:3'];
  if (identity.chainPem.trim() !== '') args.push('-certfile', paths.chain);
  return new Promise((resolvePromise, reject) => {
    const child = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'pipe', 'pipe'], timeout: PKCS12_TIMEOUT_MS });
    const out: Buffer[] = [];
    let err = '';
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
      if (err.length < 2000) err += chunk;
    });
    const passwordPipe = child.stdio[3] as NodeJS.WritableStream & { on(event: 'error', listener: () => void): unknown };
    passwordPipe.on('error', () => undefined); // openssl failing early closes the pipe; its exit status tells
    const line = password.revealBytes((bytes) => Buffer.concat([bytes, Buffer.from('\n')]));
    passwordPipe.end(line, () => {
      line.fill(0);
    });
    child.on('error', (error) => {
      reject(new BrokerError('unavailable', { code: 'agent.pkcs12', publicMessage: `cannot run openssl to write ${paths.pkcs12?.path ?? 'the PKCS#12 file'}: ${error.message}`, cause: error }));
    });
    child.on('close', (status, signal) => {
      if (status === 0) resolvePromise(Buffer.concat(out));
      else reject(new BrokerError('unavailable', { code: 'agent.pkcs12', publicMessage: `openssl pkcs12 -export failed (${signal ?? `exit ${String(status)}`}): ${err.trim().split('\n')[0] ?? ''}` }));
    });
  });
}

function readOptional(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw error;
  }
}
