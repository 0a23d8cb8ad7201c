/**
 * Shared fixtures of the pki unit tests: a software root (P-384) and intermediate (P-256) with
 * fixed dates and a seeded random source, CSR helpers, and an assertion for BrokerErrors.
 */
import { expect } from 'chai';
import { generateKeyPairSync, type KeyObject, type webcrypto as NodeWebCrypto } from 'node:crypto';
import { Crypto } from '@peculiar/webcrypto';
import type * as x509 from '@peculiar/x509';
import { BrokerError, SoftwareSigner, type ErrorKind, type KeyType } from '../../../src/core/index.js';
import {
  checkCsr,
  createIntermediateCertificate,
  createRootCertificate,
  findExtension,
  fieldsOf,
  type CheckedCsr,
  type RawExtension,
} from '../../../src/pki/index.js';
import { buildCsr, type CsrOptions } from '../../helpers/csr-builder.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';

/** @peculiar/webcrypto, to check signatures independently of node:crypto and the code under test. */
export const webcrypto = new Crypto() as unknown as NodeWebCrypto.Crypto;

export const TRUST_DOMAIN = 'anonymizer.test';
export const ROOT_NOT_BEFORE = new Date('2026-01-01T00:00:00Z');
export const ROOT_NOT_AFTER = new Date('2036-01-01T00:00:00Z');
export const INTERMEDIATE_NOT_BEFORE = new Date('2026-01-01T00:00:00Z');
export const INTERMEDIATE_NOT_AFTER = new Date('2027-01-01T00:00:00Z');
/** "Now" of the leaf tests. */
export const NOW = new Date('2026-03-01T12:00:00.250Z');

/** A root and an intermediate with software keys. */
export interface TestPki {
  readonly rootSigner: SoftwareSigner;
  readonly root: x509.X509Certificate;
  readonly intermediateSigner: SoftwareSigner;
  readonly intermediate: x509.X509Certificate;
  readonly random: SeededRandom;
}

/** Makes a root and an intermediate (both software keys, fixed dates, seeded serials). */
export async function createTestPki(
  seed = 'pki',
  options: { rootKeyType?: KeyType; intermediateKeyType?: KeyType; trustDomain?: string; permittedDnsDomains?: readonly string[] } = {},
): Promise<TestPki> {
  const random = new SeededRandom(seed);
  const rootSigner = await SoftwareSigner.generate(options.rootKeyType ?? 'P-384', 'software:test-root');
  const root = await createRootCertificate({
    signer: rootSigner,
    subject: 'CN=credbroker test root,O=credbroker',
    notBefore: ROOT_NOT_BEFORE,
    notAfter: ROOT_NOT_AFTER,
    random,
  });
  const intermediateSigner = await SoftwareSigner.generate(options.intermediateKeyType ?? 'P-256', 'software:test-intermediate');
  const intermediate = await createIntermediateCertificate({
    issuerSigner: rootSigner,
    issuerCertificate: root,
    publicKey: intermediateSigner.publicKey,
    subject: 'CN=credbroker test intermediate,O=credbroker',
    trustDomain: options.trustDomain ?? TRUST_DOMAIN,
    notBefore: INTERMEDIATE_NOT_BEFORE,
    notAfter: INTERMEDIATE_NOT_AFTER,
    random,
    ...(options.permittedDnsDomains === undefined ? {} : { permittedDnsDomains: options.permittedDnsDomains }),
  });
  return { rootSigner, root, intermediateSigner, intermediate, random };
}

/** A fresh private key of a kind node can make. */
export function privateKey(kind: 'P-256' | 'P-384' | 'P-192' | 'P-521' | 'secp256k1' | 'Ed25519' | 'Ed448' | 'RSA-1024' | 'RSA-2048'): KeyObject {
  switch (kind) {
    case 'P-256':
      return generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey;
    case 'P-384':
      return generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey;
    case 'P-192':
      return generateKeyPairSync('ec', { namedCurve: 'prime192v1' }).privateKey;
    case 'P-521':
      return generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey;
    case 'secp256k1':
      return generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey;
    case 'Ed25519':
      return generateKeyPairSync('ed25519').privateKey;
    case 'Ed448':
      return generateKeyPairSync('ed448').privateKey;
    case 'RSA-1024':
      return generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey;
    case 'RSA-2048':
      return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  }
}

/** A checked CSR for a fresh key (P-256 unless given). */
export async function checkedCsrFor(key: KeyObject = privateKey('P-256'), options: CsrOptions = {}): Promise<CheckedCsr> {
  return checkCsr(buildCsr(key, options));
}

/** Runs `action` and asserts it fails with a BrokerError of `kind` and `code`, message matching. */
export async function expectBrokerError(
  action: () => unknown,
  kind: ErrorKind,
  code: string,
  message?: RegExp,
): Promise<BrokerError> {
  const error = await catchBrokerError(action);
  expect({ kind: error.kind, code: error.code }, error.logMessage).to.deep.equal({ kind, code });
  if (message !== undefined) expect(error.publicMessage).to.match(message);
  return error;
}

/** The extension of a certificate with `oid` (fails the test if absent). */
export function extensionOf(certificate: x509.X509Certificate, oid: string): RawExtension {
  const found = findExtension(fieldsOf(certificate), oid);
  if (found === undefined) expect.fail(`certificate has no extension ${oid}`);
  return found;
}
