/**
 * Enrollment from the service side: the key is generated here and never leaves; a CSR proves
 * possession; the join token (from a 0600 file or an fd) is spent once. Files are written
 * atomically (temp file, fsync, rename): key 0600, certificate, chain and trust bundle 0644.
 */
import { constants, closeSync, fchmodSync, fsyncSync, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { SoftwareSigner, type Secret } from '../core/index.js';
import { signerCryptoFor } from '../pki/index.js';
import { connectBroker, unary } from './broker-client.js';

/** What Enroll returns. */
export interface EnrolledCertificate {
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly trustBundlePem: string;
  readonly serial: string;
  readonly spiffeId: string;
  readonly notAfterUnix: number;
}

/** Key types a service may hold (what the broker accepts in a CSR, minus RSA). */
export type ServiceKeyType = 'P-256' | 'P-384' | 'Ed25519';

/** Every {@link ServiceKeyType}. */
export const SERVICE_KEY_TYPES: readonly ServiceKeyType[] = Object.freeze(['P-256', 'P-384', 'Ed25519']);

/** Names a CSR may ask for besides the SPIFFE ID (policy must allow each). */
export interface CsrNames {
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

/**
 * A new key of `keyType` (default P-256), made here, and a CSR for it. The subject is empty (the
 * broker takes the identity from the join token or the current certificate); DNS names and IP
 * addresses, if given, go into a subjectAltName extension as requests.
 * @returns the key as PKCS#8 PEM (keep it in this process or a 0600 file) and the CSR as DER
 */
export async function newKeyAndCsr(keyType: ServiceKeyType = 'P-256', names: CsrNames = {}): Promise<{ keyPem: string; csrDer: Uint8Array }> {
  const privateKey = generateServiceKey(keyType);
  const signer = await SoftwareSigner.fromPrivateKey(privateKey, 'service key');
  const crypto = await signerCryptoFor(signer);
  const sans = [
    ...(names.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(names.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      keys: { privateKey: crypto.signingKey, publicKey: crypto.publicKey },
      signingAlgorithm: crypto.signingAlgorithm,
      ...(sans.length === 0 ? {} : { extensions: [new x509.SubjectAlternativeNameExtension(sans)] }),
    },
    crypto.crypto,
  );
  return { keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), csrDer: new Uint8Array(csr.rawData) };
}

function generateServiceKey(keyType: ServiceKeyType): KeyObject {
  switch (keyType) {
    case 'P-256':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'P-384':
      return generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
    case 'Ed25519':
      return generateKeyPairSync('ed25519').privateKey;
  }
}

/** Calls Enroll. */
export async function enroll(options: { address: string; trustBundlePem: string; joinToken: Secret; csrDer: Uint8Array; ttlSeconds?: number; serverName?: string }): Promise<EnrolledCertificate> {
  const clients = connectBroker({ address: options.address, trustBundlePem: options.trustBundlePem, ...(options.serverName === undefined ? {} : { serverName: options.serverName }) });
  try {
    return await options.joinToken.reveal((joinToken) =>
      unary<EnrolledCertificate>(clients.enrollment, 'Enroll', { joinToken, csr: Buffer.from(options.csrDer), ttlSeconds: options.ttlSeconds ?? 0 }),
    );
  } finally {
    clients.close();
  }
}

/**
 * Writes `data` to `path` atomically with `mode`: a new temp file in the same folder (created
 * with `mode`, so a key is never readable by others, not even for a moment; then set to exactly
 * `mode` whatever the umask), fsync, rename.
 * Readers see the old file or the new one, never a mix; on failure the temp file is removed.
 */
export function writeFileAtomically(path: string, data: string | Uint8Array, mode: number): void {
  const temporary = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    try {
      // The umask may have taken bits off `mode`: set it exactly (a 0644 certificate stays readable).
      fchmodSync(fd, mode);
      const bytes = typeof data === 'string' ? Buffer.from(data) : data;
      let offset = 0;
      while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temporary, path);
  } catch (error) {
    try {
      unlinkSync(temporary);
    } catch {
      // already renamed or never created: nothing to clean up
    }
    throw error;
  }
}
