/**
 * Enrollment from the service side: the key is generated here and never leaves; a CSR proves
 * possession; the join token (from a 0600 file or an fd) is spent once. Files are written
 * atomically (temp file, fsync, rename): key 0600, certificate, chain and trust bundle 0644.
 */
import { constants, closeSync, fsyncSync, openSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
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

/** A new P-256 key and a CSR for it (subject empty: the broker takes the identity from the token). */
export async function newKeyAndCsr(): Promise<{ keyPem: string; csrDer: Uint8Array }> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const signer = await SoftwareSigner.fromPrivateKey(privateKey, 'service key');
  const crypto = await signerCryptoFor(signer);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    { keys: { privateKey: crypto.signingKey, publicKey: crypto.publicKey }, signingAlgorithm: crypto.signingAlgorithm },
    crypto.crypto,
  );
  return { keyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(), csrDer: new Uint8Array(csr.rawData) };
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

/** Writes `data` to `path` atomically with `mode`: temp file in the same folder, fsync, rename. */
export function writeFileAtomically(path: string, data: string, mode: number): void {
  const temporary = join(dirname(path), `.${randomBytes(6).toString('hex')}.tmp`);
  const fd = openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    const bytes = Buffer.from(data);
    let offset = 0;
    while (offset < bytes.length) offset += writeSync(fd, bytes, offset);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, path);
}
