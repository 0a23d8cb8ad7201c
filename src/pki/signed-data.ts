/**
 * The `SIGNED{…}` shape shared by certificates, CRLs and CSRs (`SEQUENCE { tbs, algorithm,
 * BIT STRING signature }`), and its verification with node:crypto on libuv's thread pool.
 *
 * Accepted signature algorithms: ECDSA with SHA-256/384/512, RSA PKCS#1 v1.5 with
 * SHA-256/384/512, Ed25519. SHA-1 and MD5 are refused (collisions are practical); RSA-PSS is
 * not used by credbroker and is refused as unsupported.
 */
import { verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { ecdsaRawToDer, type SignatureAlgorithm } from '../core/index.js';
import { DerCursor, DerError, DerTag, derChildren, derDecodeBitString, derDecodeOid } from './der-reader.js';
import { derOid, derSequence, derTlv } from './der-writer.js';
import { SignatureAlgorithmOid as Oid, describeOid } from './oids.js';

/** A parsed `SIGNED{…}` structure. */
export interface SignedData {
  /** The whole to-be-signed TLV: the bytes the signature covers. */
  readonly tbs: Uint8Array;
  /** The outer AlgorithmIdentifier TLV (for comparison with the one inside tbs). */
  readonly algorithmRaw: Uint8Array;
  readonly algorithmOid: string;
  /** The parameters TLV, if any. */
  readonly algorithmParameters: Uint8Array | undefined;
  readonly signature: Uint8Array;
}

/** How a signature algorithm verifies: the digest and the key algorithm it needs. */
export interface SignatureScheme {
  readonly digest: 'sha256' | 'sha384' | 'sha512' | null;
  readonly keyAlgorithm: 'ec' | 'rsa' | 'ed25519';
}

const SCHEMES: Readonly<Record<string, SignatureScheme>> = Object.freeze({
  [Oid.ecdsaWithSha256]: { digest: 'sha256', keyAlgorithm: 'ec' },
  [Oid.ecdsaWithSha384]: { digest: 'sha384', keyAlgorithm: 'ec' },
  [Oid.ecdsaWithSha512]: { digest: 'sha512', keyAlgorithm: 'ec' },
  [Oid.sha256WithRsa]: { digest: 'sha256', keyAlgorithm: 'rsa' },
  [Oid.sha384WithRsa]: { digest: 'sha384', keyAlgorithm: 'rsa' },
  [Oid.sha512WithRsa]: { digest: 'sha512', keyAlgorithm: 'rsa' },
  [Oid.ed25519]: { digest: null, keyAlgorithm: 'ed25519' },
});

const WEAK: ReadonlySet<string> = new Set([Oid.ecdsaWithSha1, Oid.sha1WithRsa, Oid.md5WithRsa]);

/**
 * Parses `SEQUENCE { tbs SEQUENCE, AlgorithmIdentifier, BIT STRING }` spanning all of `der`.
 * @param what names the structure in errors (`CSR`, `certificate`)
 * @throws DerError
 */
export function parseSignedData(der: Uint8Array, what: string): SignedData {
  const outer = new DerCursor(der, what);
  const body = derChildren(outer.read(DerTag.sequence, what), what);
  outer.end();
  const tbs = body.read(DerTag.sequence, 'to-be-signed part').raw;
  const algorithm = body.read(DerTag.sequence, 'signature algorithm');
  const { oid, parameters } = parseAlgorithmIdentifier(algorithm.content, what);
  const bits = derDecodeBitString(body.read(DerTag.bitString, 'signature').content, `${what} signature`);
  body.end();
  if (bits.unusedBits !== 0) throw new DerError(`${what}: signature is not a whole number of bytes`);
  return { tbs, algorithmRaw: algorithm.raw, algorithmOid: oid, algorithmParameters: parameters, signature: bits.bytes };
}

/**
 * Parses the content of an AlgorithmIdentifier.
 * @throws DerError
 */
export function parseAlgorithmIdentifier(content: Uint8Array, what: string): { oid: string; parameters: Uint8Array | undefined } {
  const cursor = new DerCursor(content, `${what} algorithm`);
  const oid = derDecodeOid(cursor.read(DerTag.oid, 'algorithm').content, what);
  const parameters = cursor.done ? undefined : cursor.next().raw;
  cursor.end();
  return { oid, parameters };
}

/**
 * The scheme of a signature algorithm, or a phrase saying why it is refused.
 */
export function signatureSchemeOf(oid: string, parameters: Uint8Array | undefined): SignatureScheme | string {
  if (WEAK.has(oid)) return `uses the weak signature algorithm ${describeOid(oid)}`;
  const scheme = SCHEMES[oid];
  if (scheme === undefined) return `uses the unsupported signature algorithm ${describeOid(oid)}`;
  const isNull = parameters !== undefined && parameters.length === 2 && parameters[0] === DerTag.null && parameters[1] === 0;
  // RFC 5758 §3.2 and RFC 8410 §3: absent; RFC 4055 §5: NULL (absent tolerated, as OpenSSL does).
  const ok = scheme.keyAlgorithm === 'rsa' ? parameters === undefined || isNull : parameters === undefined;
  return ok ? scheme : `has unexpected parameters for ${describeOid(oid)}`;
}

/**
 * Verifies `data.signature` over `data.tbs` with `publicKey`, off the event loop.
 * Resolves false for a refused algorithm, a key of the wrong type or a bad signature; never
 * rejects.
 */
export function verifySignedData(data: SignedData, publicKey: KeyObject): Promise<boolean> {
  const scheme = signatureSchemeOf(data.algorithmOid, data.algorithmParameters);
  if (typeof scheme === 'string' || publicKey.asymmetricKeyType !== scheme.keyAlgorithm) return Promise.resolve(false);
  return new Promise((resolve) => {
    try {
      cryptoVerify(scheme.digest, data.tbs, publicKey, data.signature, (error, valid) => {
        resolve(error === null && valid);
      });
    } catch {
      resolve(false);
    }
  });
}

/**
 * The AlgorithmIdentifier (DER) of the signatures a Signer makes: ecdsa-with-SHA256/384
 * (parameters absent), sha256WithRSAEncryption (parameters NULL), Ed25519 (absent).
 */
export function algorithmIdentifierOf(algorithm: SignatureAlgorithm): Buffer {
  switch (algorithm) {
    case 'ES256':
      return derSequence(derOid(Oid.ecdsaWithSha256));
    case 'ES384':
      return derSequence(derOid(Oid.ecdsaWithSha384));
    case 'RS256':
      return derSequence(derOid(Oid.sha256WithRsa), derTlv(DerTag.null, new Uint8Array(0)));
    case 'EdDSA':
      return derSequence(derOid(Oid.ed25519));
  }
}

/**
 * Converts a Signer's signature to the form X.509 carries in its BIT STRING: ECDSA raw
 * `r || s` becomes DER `Ecdsa-Sig-Value` (RFC 3279 §2.2.3); RSA and Ed25519 are unchanged.
 * @throws RangeError if an ECDSA signature has the wrong length
 */
export function x509SignatureOf(algorithm: SignatureAlgorithm, signature: Uint8Array): Uint8Array {
  return algorithm === 'ES256' || algorithm === 'ES384' ? ecdsaRawToDer(signature, algorithm) : signature;
}
