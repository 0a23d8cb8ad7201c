/**
 * Builds PKCS#10 CSRs byte by byte for tests, with any node:crypto key (P-192, secp256k1,
 * RSA 1024 … that WebCrypto cannot make) and any extensions or attributes, good or bad.
 * Keys live in memory only.
 */
import { createPublicKey, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { derBitString, derBoolean, derInteger, derOctetString, derOid, derSequence, derTlv } from '../../src/pki/der-writer.js';

/** One requested extension: its OID, criticality and DER value. */
export interface CsrExtension {
  readonly oid: string;
  readonly critical?: boolean;
  readonly value: Uint8Array;
}

/** One CSR attribute: its OID and DER values. */
export interface CsrAttribute {
  readonly oid: string;
  readonly values: readonly Uint8Array[];
}

/** What goes into a test CSR. */
export interface CsrOptions {
  /** Common name of the subject (default `test`); the broker ignores it. */
  readonly commonName?: string;
  readonly extensions?: readonly CsrExtension[];
  readonly attributes?: readonly CsrAttribute[];
  /** Override the signature algorithm OID and digest (e.g. SHA-1 for a refusal test). */
  readonly signature?: { readonly oid: string; readonly digest: string | null; readonly nullParameters?: boolean };
  /** PKCS#10 version field (default 0 = v1). */
  readonly version?: number;
}

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** The default signature algorithm for a key: ECDSA/RSA with SHA-256 (SHA-384 for P-384), Ed25519. */
function defaultSignature(key: KeyObject): { oid: string; digest: string | null; nullParameters?: boolean } {
  switch (key.asymmetricKeyType) {
    case 'ec':
      return key.asymmetricKeyDetails?.namedCurve === 'secp384r1'
        ? { oid: '1.2.840.10045.4.3.3', digest: 'sha384' }
        : { oid: '1.2.840.10045.4.3.2', digest: 'sha256' };
    case 'rsa':
      return { oid: '1.2.840.113549.1.1.11', digest: 'sha256', nullParameters: true };
    case 'ed25519':
      return { oid: '1.3.101.112', digest: null };
    default:
      throw new Error(`no default CSR signature for ${key.asymmetricKeyType ?? '?'}`);
  }
}

/** A DER Extension. */
export function extension(oid: string, value: Uint8Array, critical = false): Buffer {
  return derSequence(derOid(oid), ...(critical ? [derBoolean(true)] : []), derOctetString(value));
}

/** Builds and signs a CSR with `privateKey`; returns its DER. */
export function buildCsr(privateKey: KeyObject, options: CsrOptions = {}): Buffer {
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  const subject = derSequence(derTlv(0x31, derSequence(derOid('2.5.4.3'), derTlv(0x0c, Buffer.from(options.commonName ?? 'test', 'utf8')))));
  const attributes: Buffer[] = (options.attributes ?? []).map((attribute) =>
    derSequence(derOid(attribute.oid), derTlv(0x31, Buffer.concat(attribute.values))),
  );
  if (options.extensions !== undefined) {
    const extensions = derSequence(...options.extensions.map((e) => extension(e.oid, e.value, e.critical ?? false)));
    attributes.push(derSequence(derOid(EXTENSION_REQUEST), derTlv(0x31, extensions)));
  }
  const info = derSequence(derInteger(options.version ?? 0), subject, spki, derTlv(0xa0, Buffer.concat(attributes)));
  const signature = options.signature ?? defaultSignature(publicKey);
  const value = cryptoSign(signature.digest, info, privateKey);
  const algorithm = derSequence(derOid(signature.oid), ...(signature.nullParameters === true ? [Buffer.from([0x05, 0x00])] : []));
  return derSequence(info, algorithm, derBitString(value));
}

/** PEM of a CSR's DER. */
export function csrPem(der: Uint8Array): string {
  const body = Buffer.from(der).toString('base64').replace(/(.{64})/g, '$1\n').trimEnd();
  return `-----BEGIN CERTIFICATE REQUEST-----\n${body}\n-----END CERTIFICATE REQUEST-----\n`;
}
