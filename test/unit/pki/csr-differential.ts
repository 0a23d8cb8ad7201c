/**
 * Differential testing of checkCsr: what a CSR check "did" with an input (accepted, with what;
 * or refused, how), a comparison of checkCsr with its reference (check-csr-reference.ts), and a
 * corpus of valid and invalid CSRs, including hand-made public keys (compressed and
 * non-reduced EC points, RSA keys at the size limits, foreign key types) that reach the edges
 * of the fast key import.
 */
import { expect } from 'chai';
import { ECDH, generateKeyPairSync, sign as cryptoSign, type KeyObject } from 'node:crypto';
import { BrokerError } from '../../../src/core/index.js';
import {
  CsrAttributeOid,
  ExtendedKeyUsageOid,
  ExtensionOid,
  MAX_CSR_BYTES,
  SignatureAlgorithmOid,
  derBitString,
  derBoolean,
  derInteger,
  derNamedBits,
  derOctetString,
  derOid,
  derSequence,
  derTlv,
  encodeGeneralNames,
  parseSignedData,
  type CheckedCsr,
  type EncodableName,
} from '../../../src/pki/index.js';
import { spkiOfPublicKey } from '../../../src/pki/public-key-spki.js';
import { buildCsr, csrPem, type CsrOptions } from '../../helpers/csr-builder.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { privateKey } from './pki-fixtures.js';

/** What a CSR check did with one input, in comparable form. */
export type CsrOutcome =
  | {
      readonly accepted: true;
      readonly keyType: string;
      readonly requestedDnsNames: readonly string[];
      readonly requestedIpAddresses: readonly string[];
      readonly requestedUris: readonly string[];
      readonly der: string;
      /** The key, exported by node (hex SPKI). */
      readonly spki: string;
    }
  | {
      readonly accepted: false;
      /** The class of what was thrown. */
      readonly thrown: string;
      readonly kind?: string;
      readonly code?: string;
      readonly publicMessage?: string;
      readonly logMessage?: string;
    };

/** Runs `check` on `input` and describes the outcome. Never throws. */
export async function csrOutcome(check: (csr: Uint8Array | string) => Promise<CheckedCsr>, input: Uint8Array | string): Promise<CsrOutcome> {
  try {
    const checked = await check(input);
    return {
      accepted: true,
      keyType: checked.keyType,
      requestedDnsNames: [...checked.requestedDnsNames],
      requestedIpAddresses: [...checked.requestedIpAddresses],
      requestedUris: [...checked.requestedUris],
      der: Buffer.from(checked.der).toString('hex'),
      spki: checked.publicKey.export({ format: 'der', type: 'spki' }).toString('hex'),
    };
  } catch (error) {
    if (error instanceof BrokerError) {
      return { accepted: false, thrown: 'BrokerError', kind: error.kind, code: error.code, publicMessage: error.publicMessage, logMessage: error.logMessage };
    }
    return { accepted: false, thrown: error instanceof Error ? `${error.name}: ${error.message}` : String(error) };
  }
}

/**
 * The SPKI that checkCsr remembered for an accepted CSR's key (what the leaf will carry) is the
 * key's own export.
 */
export async function expectRememberedSpki(check: (csr: Uint8Array | string) => Promise<CheckedCsr>, input: Uint8Array | string): Promise<void> {
  let checked: CheckedCsr;
  try {
    checked = await check(input);
  } catch {
    return;
  }
  expect(Buffer.from(spkiOfPublicKey(checked.publicKey)).toString('hex')).to.equal(checked.publicKey.export({ format: 'der', type: 'spki' }).toString('hex'));
}

/** One corpus entry. */
export interface CsrSample {
  readonly name: string;
  readonly input: Uint8Array | string;
}

const P256 = {
  p: 0xffffffff00000001000000000000000000000000ffffffffffffffffffffffffn,
  b: 0x5ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2604bn,
};

function modPow(base: bigint, exponent: bigint, modulus: bigint): bigint {
  let result = 1n;
  let b = base % modulus;
  for (let e = exponent; e > 0n; e >>= 1n) {
    if (e & 1n) result = (result * b) % modulus;
    b = (b * b) % modulus;
  }
  return result;
}

function bigintBytes(value: bigint, length: number): Buffer {
  return Buffer.from(value.toString(16).padStart(length * 2, '0'), 'hex');
}

/** A P-256 point with a small x (so x + p still fits 32 bytes): [x, y]. */
export function smallP256Point(): [bigint, bigint] {
  const { p, b } = P256;
  for (let x = 1n; ; x++) {
    const rhs = (((x * x * x - 3n * x + b) % p) + p) % p;
    if (modPow(rhs, (p - 1n) / 2n, p) === 1n) return [x, modPow(rhs, (p + 1n) / 4n, p)];
  }
}

const P256_SPKI_PREFIX = Buffer.from('3059301306072a8648ce3d020106082a8648ce3d030107034200', 'hex');

/** A P-256 SPKI with the given point bytes (0x04 || x || y, or anything else). */
export function p256Spki(point: Uint8Array): Buffer {
  return derSequence(Buffer.from('301306072a8648ce3d020106082a8648ce3d030107', 'hex'), derBitString(point));
}

/** An RSA SPKI from modulus and exponent content octets (as given: not normalized). */
export function rsaSpki(modulus: Uint8Array, exponent: Uint8Array, nullParameters = true): Buffer {
  return derSequence(
    derSequence(derOid('1.2.840.113549.1.1.1'), ...(nullParameters ? [derTlv(0x05, Buffer.alloc(0))] : [])),
    derBitString(derSequence(derTlv(0x02, modulus), derTlv(0x02, exponent))),
  );
}

/**
 * A CSR carrying `spki`, signed with `key` (whose public key may be another: the check then
 * finds no proof of possession, if it gets that far).
 */
export function csrWithSpki(spki: Uint8Array, key: KeyObject, signature: { oid: string; digest: string | null; nullParameters?: boolean }): Buffer {
  const subject = derSequence(derTlv(0x31, derSequence(derOid('2.5.4.3'), derTlv(0x0c, Buffer.from('test')))));
  const info = derSequence(derInteger(0), subject, spki, derTlv(0xa0, Buffer.alloc(0)));
  const value = cryptoSign(signature.digest, info, key);
  return derSequence(info, derSequence(derOid(signature.oid), ...(signature.nullParameters === true ? [derTlv(0x05, Buffer.alloc(0))] : [])), derBitString(value));
}

const ES256 = { oid: SignatureAlgorithmOid.ecdsaWithSha256, digest: 'sha256' };
const RS256 = { oid: SignatureAlgorithmOid.sha256WithRsa, digest: 'sha256', nullParameters: true };
const ED25519 = { oid: SignatureAlgorithmOid.ed25519, digest: null };

const san = (...names: EncodableName[]): CsrOptions => ({ extensions: [{ oid: ExtensionOid.subjectAltName, value: encodeGeneralNames(names) }] });

/** Public-key edge cases: SPKIs the fast import recognises, almost recognises, or must leave alone. */
function keyEdgeCases(): CsrSample[] {
  const samples: CsrSample[] = [];
  const ec = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const point = ec.publicKey.export({ format: 'der', type: 'spki' }).subarray(P256_SPKI_PREFIX.length);
  const compressed = ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer;
  samples.push({ name: 'P-256, compressed point (valid key, non-canonical SPKI)', input: csrWithSpki(p256Spki(compressed), ec.privateKey, ES256) });
  const hybrid = ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'hybrid') as Buffer;
  samples.push({ name: 'P-256, hybrid point', input: csrWithSpki(p256Spki(hybrid), ec.privateKey, ES256) });
  const offCurve = Buffer.from(point);
  offCurve[64] = (offCurve[64] ?? 0) ^ 0x01;
  samples.push({ name: 'P-256, point off the curve', input: csrWithSpki(p256Spki(offCurve), ec.privateKey, ES256) });
  samples.push({ name: 'P-256, all-zero point', input: csrWithSpki(p256Spki(Buffer.concat([Buffer.from([4]), Buffer.alloc(64)])), ec.privateKey, ES256) });
  samples.push({ name: 'P-256, point with a trailing byte', input: csrWithSpki(p256Spki(Buffer.concat([point, Buffer.from([0])])), ec.privateKey, ES256) });
  samples.push({ name: 'P-256, point without its last byte', input: csrWithSpki(p256Spki(point.subarray(0, 64)), ec.privateKey, ES256) });
  const [x, y] = smallP256Point();
  const onCurve = Buffer.concat([Buffer.from([4]), bigintBytes(x, 32), bigintBytes(y, 32)]);
  samples.push({ name: 'P-256, valid point with small x (signed by another key)', input: csrWithSpki(p256Spki(onCurve), ec.privateKey, ES256) });
  const unreduced = Buffer.concat([Buffer.from([4]), bigintBytes(x + P256.p, 32), bigintBytes(y, 32)]);
  samples.push({ name: 'P-256, x + p instead of x (non-reduced coordinate)', input: csrWithSpki(p256Spki(unreduced), ec.privateKey, ES256) });

  const ed = generateKeyPairSync('ed25519');
  const edSpki = ed.publicKey.export({ format: 'der', type: 'spki' });
  samples.push({ name: 'Ed25519, all-zero key', input: csrWithSpki(Buffer.concat([edSpki.subarray(0, 12), Buffer.alloc(32)]), ed.privateKey, ED25519) });
  samples.push({ name: 'Ed25519, 31-byte key', input: csrWithSpki(derSequence(derSequence(derOid('1.3.101.112')), derBitString(edSpki.subarray(13))), ed.privateKey, ED25519) });

  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = rsa.publicKey.export({ format: 'jwk' });
  const n = Buffer.from(jwk.n ?? '', 'base64url');
  const e = Buffer.from(jwk.e ?? '', 'base64url');
  const positive = Buffer.concat([Buffer.from([0]), n]);
  samples.push({ name: 'RSA-2048, canonical SPKI rebuilt by hand', input: csrWithSpki(rsaSpki(positive, e), rsa.privateKey, RS256) });
  samples.push({ name: 'RSA-2048, parameters absent instead of NULL', input: csrWithSpki(rsaSpki(positive, e, false), rsa.privateKey, RS256) });
  samples.push({ name: 'RSA-2048, modulus without its sign byte (negative)', input: csrWithSpki(rsaSpki(n, e), rsa.privateKey, RS256) });
  samples.push({ name: 'RSA-2048, modulus with a superfluous zero byte', input: csrWithSpki(rsaSpki(Buffer.concat([Buffer.from([0]), positive]), e), rsa.privateKey, RS256) });
  samples.push({ name: 'RSA-2048, exponent 3 in place of 65537', input: csrWithSpki(rsaSpki(positive, Buffer.from([3])), rsa.privateKey, RS256) });
  samples.push({ name: 'RSA-2048, exponent 65537 with a leading zero', input: csrWithSpki(rsaSpki(positive, Buffer.from('00010001', 'hex')), rsa.privateKey, RS256) });
  const random = new SeededRandom('rsa-moduli');
  const modulusOfBits = (bits: number): Buffer => {
    const bytes = random.bytes(Math.ceil(bits / 8));
    const top = bits % 8 === 0 ? 8 : bits % 8;
    bytes[0] = ((bytes[0] ?? 0) & ((1 << top) - 1)) | (1 << (top - 1));
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) | 1;
    return bytes.readUInt8(0) & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes;
  };
  for (const bits of [2047, 2048, 8192, 8193]) {
    samples.push({ name: `RSA, a ${bits}-bit modulus (signed by another key)`, input: csrWithSpki(rsaSpki(modulusOfBits(bits), Buffer.from('010001', 'hex')), rsa.privateKey, RS256) });
  }
  samples.push({ name: 'RSA, an all-zero modulus', input: csrWithSpki(rsaSpki(Buffer.from([0]), Buffer.from('010001', 'hex')), rsa.privateKey, RS256) });
  samples.push({ name: 'RSA, exponent 3 key of its own', input: buildCsr(generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).privateKey) });
  samples.push({ name: 'RSA-PSS key', input: buildCsr(generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey, { signature: { oid: SignatureAlgorithmOid.rsassaPss, digest: 'sha256' } }) });
  samples.push({ name: 'X25519 key', input: csrWithSpki(generateKeyPairSync('x25519').publicKey.export({ format: 'der', type: 'spki' }), ed.privateKey, ED25519) });
  samples.push({ name: 'RSA-4096', input: buildCsr(generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey) });
  return samples;
}

/**
 * Valid and invalid CSRs: every refusal that check-csr.test.ts names, public-key edge cases,
 * and each input as DER, PEM text and PEM bytes where that makes sense.
 */
export function csrCorpus(): CsrSample[] {
  const p256 = privateKey('P-256');
  const good = buildCsr(p256);
  const keyUsage = (...bits: number[]): Uint8Array => derNamedBits(bits);
  const samples: CsrSample[] = [];
  for (const kind of ['P-256', 'P-384', 'Ed25519', 'RSA-2048'] as const) {
    const der = buildCsr(privateKey(kind));
    samples.push({ name: `${kind} (DER)`, input: der }, { name: `${kind} (PEM text)`, input: csrPem(der) }, { name: `${kind} (PEM bytes)`, input: Buffer.from(csrPem(der)) });
  }
  samples.push(
    {
      name: 'every harmless request',
      input: buildCsr(p256, {
        extensions: [
          {
            oid: ExtensionOid.subjectAltName,
            value: encodeGeneralNames([
              { kind: 'uniformResourceIdentifier', text: 'spiffe://anonymizer.test/media/blur' },
              { kind: 'dNSName', text: 'Blur.Media.Internal' },
              { kind: 'dNSName', text: 'blur.media.internal' },
              { kind: 'iPAddress', address: Buffer.from([10, 0, 0, 1]) },
              { kind: 'iPAddress', address: Buffer.from('fd000000000000000000000000000001', 'hex') },
            ]),
          },
          { oid: ExtensionOid.keyUsage, critical: true, value: keyUsage(0, 2, 4) },
          { oid: ExtensionOid.extKeyUsage, value: derSequence(derOid(ExtendedKeyUsageOid.serverAuth), derOid(ExtendedKeyUsageOid.clientAuth)) },
          { oid: ExtensionOid.basicConstraints, critical: true, value: derSequence() },
          { oid: ExtensionOid.subjectKeyIdentifier, value: derOctetString(Buffer.alloc(20, 7)) },
        ],
      }),
    },
    {
      name: 'a flipped byte in the signature',
      input: (() => {
        const der = Buffer.from(good);
        der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x01;
        return der;
      })(),
    },
    {
      name: 'the signature of another key',
      input: (() => {
        const mine = parseSignedData(good, 'CSR');
        const other = parseSignedData(buildCsr(privateKey('P-256')), 'CSR');
        return derSequence(mine.tbs, mine.algorithmRaw, derBitString(other.signature));
      })(),
    },
    { name: 'basicConstraints cA TRUE', input: buildCsr(p256, { extensions: [{ oid: ExtensionOid.basicConstraints, critical: true, value: derSequence(derBoolean(true)) }] }) },
    { name: 'keyUsage keyCertSign', input: buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: keyUsage(0, 5) }] }) },
    { name: 'keyUsage cRLSign', input: buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: keyUsage(6) }] }) },
    { name: 'keyUsage contentCommitment', input: buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: keyUsage(1) }] }) },
    { name: 'extKeyUsage codeSigning', input: buildCsr(p256, { extensions: [{ oid: ExtensionOid.extKeyUsage, value: derSequence(derOid(ExtendedKeyUsageOid.codeSigning)) }] }) },
    { name: 'an unknown extension', input: buildCsr(p256, { extensions: [{ oid: '1.3.6.1.4.1.99999.1', value: derTlv(0x05, Buffer.alloc(0)) }] }) },
    { name: 'a malformed keyUsage', input: buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: Buffer.from([0x03, 0x02, 0x09, 0x80]) }] }) },
    { name: 'an extension twice', input: buildCsr(p256, { extensions: [{ oid: ExtensionOid.keyUsage, value: keyUsage(0) }, { oid: ExtensionOid.keyUsage, value: keyUsage(0) }] }) },
    { name: 'a P-192 key', input: buildCsr(privateKey('P-192')) },
    { name: 'a P-521 key', input: buildCsr(privateKey('P-521'), { signature: { oid: SignatureAlgorithmOid.ecdsaWithSha512, digest: 'sha512' } }) },
    { name: 'a secp256k1 key', input: buildCsr(privateKey('secp256k1')) },
    { name: 'an RSA-1024 key', input: buildCsr(privateKey('RSA-1024')) },
    { name: 'an Ed448 key', input: buildCsr(privateKey('Ed448'), { signature: { oid: SignatureAlgorithmOid.ed448, digest: null } }) },
    { name: 'a SHA-1 signature', input: buildCsr(p256, { signature: { oid: SignatureAlgorithmOid.ecdsaWithSha1, digest: 'sha1' } }) },
    { name: 'an algorithm that does not fit the key', input: buildCsr(privateKey('RSA-2048'), { signature: { oid: SignatureAlgorithmOid.ecdsaWithSha256, digest: 'sha256' } }) },
    { name: 'ECDSA with SHA-384 on a P-256 key', input: buildCsr(p256, { signature: { oid: SignatureAlgorithmOid.ecdsaWithSha384, digest: 'sha384' } }) },
    { name: 'a challengePassword attribute', input: buildCsr(p256, { attributes: [{ oid: CsrAttributeOid.challengePassword, values: [derTlv(0x0c, Buffer.from('pw'))] }] }) },
    { name: 'an email SAN', input: buildCsr(p256, { extensions: [{ oid: ExtensionOid.subjectAltName, value: derSequence(derTlv(0x81, Buffer.from('a@b.c'))) }] }) },
    { name: 'two URI SANs', input: buildCsr(p256, san({ kind: 'uniformResourceIdentifier', text: 'spiffe://td/a' }, { kind: 'uniformResourceIdentifier', text: 'spiffe://td/b' })) },
    { name: 'a URI SAN that is not a SPIFFE ID', input: buildCsr(p256, san({ kind: 'uniformResourceIdentifier', text: 'https://blur.media.internal/' })) },
    { name: 'a malformed DNS SAN', input: buildCsr(p256, san({ kind: 'dNSName', text: 'blur media' })) },
    { name: 'PKCS#10 version 2', input: buildCsr(p256, { version: 1 }) },
    { name: 'truncated DER', input: good.subarray(0, good.length - 10) },
    { name: 'trailing bytes', input: Buffer.concat([good, Buffer.from([0])]) },
    { name: 'garbage', input: new SeededRandom('garbage').bytes(300) },
    { name: 'empty input', input: new Uint8Array(0) },
    { name: 'an indefinite length', input: Buffer.concat([Buffer.from([0x30, 0x80]), good.subarray(2), Buffer.from([0, 0])]) },
    { name: 'a non-minimal length', input: Buffer.concat([Buffer.from([0x30, 0x82, 0x00, good[1] ?? 0]), good.subarray(2)]) },
    { name: 'oversized DER', input: Buffer.alloc(MAX_CSR_BYTES + 1, 0x30) },
    { name: 'oversized PEM', input: `-----BEGIN CERTIFICATE REQUEST-----\n${'A'.repeat(3 * MAX_CSR_BYTES)}\n-----END CERTIFICATE REQUEST-----\n` },
    { name: 'a PEM certificate label', input: csrPem(good).replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE') },
    { name: 'two PEM blocks', input: csrPem(good) + csrPem(good) },
    { name: 'text that is not PEM', input: 'hello' },
  );
  return [...samples, ...keyEdgeCases()];
}

