/**
 * Fuzzing target (a): checkCsr on mutated and generated DER (fast-check). Complements
 * test/unit/pki/csr-fuzz.ts (a differential fuzzer against the reference checker) with the
 * inputs issue 7 names: truncations, bit flips, OIDs swapped for wrong ones, huge SAN lists,
 * bad signatures, and keys with odd parameters (curves, exponents, RSA-PSS, DSA, Ed448,
 * explicit or missing curve parameters), most of them validly signed so the deep checks run.
 *
 * Properties, for every input:
 * 1. checkCsr resolves only for a valid CSR: every acceptance is judged again by an independent
 *    checker (independent-csr.ts: own DER reader, node:crypto) and, for a sample, by
 *    `openssl req -verify`;
 * 2. otherwise it rejects with a BrokerError of kind invalid and a `pki.csr_*` code, never
 *    another error;
 * 3. it settles within {@link MAX_MS_PER_CASE} (a hang detector; a check takes about 1 ms).
 */
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync, sign as cryptoSign, createPublicKey, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import { BrokerError } from '../../src/core/index.js';
import { checkCsr } from '../../src/pki/index.js';
import { derBitString, derInteger, derOid, derSequence, derTlv } from '../../src/pki/der-writer.js';
import { csrPem } from '../helpers/csr-builder.js';
import { csrProblem } from './independent-csr.js';
import { FuzzReport, withinMs } from './fuzz-report.js';

/** Per-case time limit, in ms. */
export const MAX_MS_PER_CASE = 2000;

/** Options of {@link fuzzCsrTarget}. */
export interface CsrFuzzOptions {
  /** fast-check seed (default: random, printed in the report's name). */
  readonly seed?: number;
  /** How many accepted CSRs `openssl req -verify` also checks (default 25; 0: none). */
  readonly opensslSample?: number;
}

const OID = Object.freeze({
  ecPublicKey: '1.2.840.10045.2.1',
  rsaEncryption: '1.2.840.113549.1.1.1',
  rsassaPss: '1.2.840.113549.1.1.10',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',
  p256: '1.2.840.10045.3.1.7',
  p384: '1.3.132.0.34',
  p521: '1.3.132.0.35',
  secp256k1: '1.3.132.0.10',
  ecdsaSha256: '1.2.840.10045.4.3.2',
  ecdsaSha384: '1.2.840.10045.4.3.3',
  ecdsaSha1: '1.2.840.10045.4.1',
  sha256Rsa: '1.2.840.113549.1.1.11',
  sha1Rsa: '1.2.840.113549.1.1.5',
  md5Rsa: '1.2.840.113549.1.1.4',
  dsaSha256: '2.16.840.1.101.3.4.3.2',
  subjectAltName: '2.5.29.17',
  extensionRequest: '1.2.840.113549.1.9.14',
  challengePassword: '1.2.840.113549.1.9.7',
  commonName: '2.5.4.3',
  unknown: '1.3.6.1.4.1.99999.7',
});

/** OIDs to put where another OID was. */
const WRONG_OIDS: readonly string[] = Object.values(OID);

/** A signing key and how a CSR signs with it. */
interface KeyChoice {
  readonly name: string;
  readonly key: KeyObject;
  readonly sigOid: string;
  readonly digest: string | null;
  readonly nullParameters: boolean;
}

/** The DER content of an OID (for the OID-swap mutation). */
function oidContent(oid: string): Buffer {
  return derOid(oid).subarray(2);
}

/** Builds the CertificationRequestInfo around any SPKI and signs it with `signer`. */
function signedCsr(spki: Buffer, signer: KeyChoice, options: { extensions?: readonly Buffer[]; sigOid?: string; attributes?: readonly Buffer[] } = {}): Buffer {
  const subject = derSequence(derTlv(0x31, derSequence(derOid(OID.commonName), derTlv(0x0c, Buffer.from('fuzz')))));
  const attributes = [...(options.attributes ?? [])];
  if (options.extensions !== undefined) attributes.push(derSequence(derOid(OID.extensionRequest), derTlv(0x31, derSequence(...options.extensions))));
  const info = derSequence(derInteger(0), subject, spki, derTlv(0xa0, Buffer.concat(attributes)));
  const signature = cryptoSign(signer.digest, info, signer.key);
  const algorithm = derSequence(derOid(options.sigOid ?? signer.sigOid), ...(signer.nullParameters ? [Buffer.from([0x05, 0x00])] : []));
  return derSequence(info, algorithm, derBitString(signature));
}

function spkiOf(key: KeyObject): Buffer {
  return createPublicKey(key).export({ format: 'der', type: 'spki' });
}

/** A SAN extension with `names` (each a DER GeneralName). */
function sanExtension(names: readonly Buffer[]): Buffer {
  return derSequence(derOid(OID.subjectAltName), derTlv(0x04, derSequence(...names)));
}

type CsrInput =
  | { readonly kind: 'mutated'; readonly seed: number; readonly ops: readonly { readonly op: 'truncate' | 'flip' | 'set' | 'oid'; readonly at: number; readonly value: number }[]; readonly pem: boolean }
  | { readonly kind: 'hugeSan'; readonly key: number; readonly count: number; readonly nameKind: number; readonly label: string }
  | { readonly kind: 'badSignature'; readonly seed: number; readonly how: number; readonly bytes: Uint8Array }
  | { readonly kind: 'wrongOid'; readonly key: number; readonly where: 'signature' | 'keyAlgorithm' | 'curve'; readonly oid: number }
  | { readonly kind: 'oddKey'; readonly key: number; readonly spkiEdit: number };

/**
 * Runs `runs` cases against checkCsr and returns the counts (it does not throw on a broken
 * property: the report counts it, with counterexamples; callers assert `report.clean`).
 */
export async function fuzzCsrTarget(runs: number, options: CsrFuzzOptions = {}): Promise<FuzzReport> {
  const seed = options.seed ?? Math.floor(Math.random() * 0x7fffffff);
  const report = new FuzzReport(`csr (checkCsr, seed ${seed})`);
  let opensslLeft = options.opensslSample ?? 25;
  const started = Date.now();

  const rsaSha256 = (name: string, key: KeyObject): KeyChoice => ({ name, key, sigOid: OID.sha256Rsa, digest: 'sha256', nullParameters: true });
  const ec = (name: string, key: KeyObject, digest = 'sha256', sigOid: string = OID.ecdsaSha256): KeyChoice => ({ name, key, sigOid, digest, nullParameters: false });
  // Keys a valid CSR may carry…
  const good: KeyChoice[] = [
    ec('P-256', generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey),
    ec('P-384', generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey, 'sha384', OID.ecdsaSha384),
    { name: 'Ed25519', key: generateKeyPairSync('ed25519').privateKey, sigOid: OID.ed25519, digest: null, nullParameters: false },
    rsaSha256('RSA-2048', generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey),
  ];
  // …and keys with odd parameters, each signing for itself.
  const odd: KeyChoice[] = [
    ec('P-192', generateKeyPairSync('ec', { namedCurve: 'prime192v1' }).privateKey),
    ec('secp256k1', generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey),
    ec('P-521', generateKeyPairSync('ec', { namedCurve: 'secp521r1' }).privateKey, 'sha512', '1.2.840.10045.4.3.4'),
    rsaSha256('RSA-1024', generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey),
    rsaSha256('RSA-2048-e3', generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 3 }).privateKey),
    rsaSha256('RSA-2048-e17', generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 17 }).privateKey),
    { name: 'RSA-PSS', key: generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey, sigOid: OID.rsassaPss, digest: 'sha256', nullParameters: false },
    rsaSha256('RSA-PSS-as-PKCS1', generateKeyPairSync('rsa-pss', { modulusLength: 2048 }).privateKey),
    { name: 'DSA', key: generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey, sigOid: OID.dsaSha256, digest: 'sha256', nullParameters: false },
    { name: 'Ed448', key: generateKeyPairSync('ed448').privateKey, sigOid: OID.ed448, digest: null, nullParameters: false },
  ];
  const spiffe = derTlv(0x86, Buffer.from('spiffe://fuzz.test/pipeline/blur'));
  const seeds: Buffer[] = good.flatMap((choice) => [
    signedCsr(spkiOf(choice.key), choice),
    signedCsr(spkiOf(choice.key), choice, { extensions: [sanExtension([spiffe, derTlv(0x82, Buffer.from('blur.pipeline.internal')), derTlv(0x87, Buffer.from([10, 0, 0, 7]))])] }),
  ]);
  // Re-encodings of the P-256 SPKI: other algorithm/curve OIDs, parameters missing, NULL,
  // explicit (a SEQUENCE), trailing bytes; each edit keeps the signature by the real key.
  const p256 = good[0]!;
  const p256Point = spkiOf(p256.key).subarray(-65);
  const ecSpki = (algorithm: Buffer): Buffer => derSequence(algorithm, derBitString(p256Point));
  const rsa = good[3]!;
  const rsaKeyBits = spkiOf(rsa.key).subarray(24);
  const spkiEdits: readonly ((choice: KeyChoice) => Buffer)[] = [
    (choice) => spkiOf(choice.key),
    () => ecSpki(derSequence(derOid(OID.ecPublicKey))),
    () => ecSpki(derSequence(derOid(OID.ecPublicKey), Buffer.from([0x05, 0x00]))),
    () => ecSpki(derSequence(derOid(OID.ecPublicKey), derSequence(derInteger(1), derSequence(derOid('1.2.840.10045.1.1'), derInteger(7)), derInteger(3)))),
    () => ecSpki(derSequence(derOid(OID.ecPublicKey), derOid(OID.secp256k1))),
    () => ecSpki(derSequence(derOid(OID.ecPublicKey), derOid(OID.p384))),
    () => ecSpki(derSequence(derOid(OID.ecPublicKey), derOid(OID.unknown))),
    () => ecSpki(derSequence(derOid(OID.rsaEncryption), Buffer.from([0x05, 0x00]))),
    () => ecSpki(derSequence(derOid(OID.ecPublicKey), derOid(OID.p256), Buffer.from([0x05, 0x00]))),
    () => Buffer.concat([derSequence(derSequence(derOid(OID.rsaEncryption)), rsaKeyBits)]),
    () => Buffer.concat([derSequence(derSequence(derOid(OID.rsaEncryption), derOid(OID.p256)), rsaKeyBits)]),
    () => Buffer.concat([derSequence(derSequence(derOid(OID.rsassaPss)), rsaKeyBits)]),
    () => Buffer.concat([derSequence(derSequence(derOid(OID.ecPublicKey), derOid(OID.p256)), derBitString(Buffer.concat([p256Point, Buffer.from([0])])))]),
  ];

  const nat = fc.nat({ max: 1 << 20 });
  const inputArbitrary: fc.Arbitrary<CsrInput> = fc.oneof(
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constant('mutated' as const),
        seed: fc.nat({ max: seeds.length - 1 }),
        ops: fc.array(fc.record({ op: fc.constantFrom('truncate' as const, 'flip' as const, 'set' as const, 'oid' as const), at: nat, value: fc.nat({ max: 255 }) }), { minLength: 1, maxLength: 3 }),
        pem: fc.boolean(),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('hugeSan' as const),
        key: fc.nat({ max: good.length - 1 }),
        count: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 64, max: 4000 })),
        nameKind: fc.nat({ max: 4 }),
        label: fc.stringMatching(/^[a-z0-9]{1,20}$/),
      }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('badSignature' as const), seed: fc.nat({ max: seeds.length - 1 }), how: fc.nat({ max: 5 }), bytes: fc.uint8Array({ maxLength: 600 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({ kind: fc.constant('wrongOid' as const), key: fc.nat({ max: good.length - 1 }), where: fc.constantFrom('signature' as const, 'keyAlgorithm' as const, 'curve' as const), oid: fc.nat({ max: WRONG_OIDS.length - 1 }) }),
    },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('oddKey' as const), key: fc.nat({ max: odd.length + good.length - 1 }), spkiEdit: fc.nat({ max: spkiEdits.length - 1 }) }) },
  );

  const materialize = (input: CsrInput): Buffer | string => {
    switch (input.kind) {
      case 'mutated': {
        let bytes = Buffer.from(seeds[input.seed] ?? seeds[0]!);
        for (const { op, at, value } of input.ops) {
          if (bytes.length === 0) break;
          const i = at % bytes.length;
          if (op === 'truncate') bytes = bytes.subarray(0, i);
          else if (op === 'flip') bytes[i] = (bytes[i] ?? 0) ^ (1 << (value % 8));
          else if (op === 'set') bytes[i] = value;
          else {
            // Replace the n-th OBJECT IDENTIFIER (tag 06, short length) with a wrong one.
            const positions: number[] = [];
            for (let p = 0; p + 1 < bytes.length; p++) if (bytes[p] === 0x06 && (bytes[p + 1] ?? 0x80) < 0x80 && (bytes[p + 1] ?? 0) > 0) positions.push(p);
            const p = positions[value % Math.max(positions.length, 1)];
            if (p === undefined) continue;
            const length = bytes[p + 1] ?? 0;
            const replacement = oidContent(WRONG_OIDS[at % WRONG_OIDS.length] ?? OID.unknown);
            if (replacement.length === length) {
              bytes = Buffer.concat([bytes.subarray(0, p + 2), replacement, bytes.subarray(p + 2 + length)]);
            } else {
              // Different length: outer lengths are now wrong too (a malformed input, on purpose).
              bytes = Buffer.concat([bytes.subarray(0, p + 1), Buffer.from([replacement.length]), replacement, bytes.subarray(p + 2 + length)]);
            }
          }
        }
        return input.pem ? csrPem(bytes) : bytes;
      }
      case 'hugeSan': {
        const names: Buffer[] = [];
        for (let i = 0; i < input.count; i++) {
          switch (input.nameKind) {
            case 0:
              names.push(derTlv(0x82, Buffer.from(`${input.label}${i}.pipeline.internal`)));
              break;
            case 1:
              names.push(derTlv(0x87, Buffer.from([10, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff])));
              break;
            case 2:
              names.push(derTlv(0x86, Buffer.from(`spiffe://fuzz.test/${input.label}/${i}`)));
              break;
            case 3:
              names.push(derTlv(0x81, Buffer.from(`${input.label}${i}@example.com`)));
              break;
            default:
              names.push(i % 2 === 0 ? derTlv(0x82, Buffer.from(`${input.label}.example`)) : derTlv(0x87, Buffer.alloc(16, i & 0xff)));
          }
        }
        const choice = good[input.key] ?? p256;
        return signedCsr(spkiOf(choice.key), choice, { extensions: [sanExtension(names)] });
      }
      case 'badSignature': {
        const der = Buffer.from(seeds[input.seed] ?? seeds[0]!);
        const outer = derChildrenLoose(der);
        if (outer === null) return der;
        const [info, algorithm, signature] = outer;
        const value = signature.subarray(signature.length - Math.min(signature.length, 3));
        const replace = (bits: Buffer): Buffer => derSequence(info, algorithm, bits);
        switch (input.how) {
          case 0:
            return replace(derBitString(input.bytes));
          case 1:
            return replace(derBitString(new Uint8Array(0)));
          case 2:
            // ECDSA-Sig-Value (r, s) = (0, 0) and (1, 1): never valid signatures.
            return replace(derBitString(derSequence(derInteger(input.bytes.length % 2), derInteger(input.bytes.length % 2))));
          case 3:
            // The bits of a signature by another key over the same info.
            return replace(derBitString(cryptoSign(good[input.bytes.length % 2]!.digest, info, odd[1]!.key)));
          case 4:
            // Unused-bits octet not zero.
            return replace(Buffer.concat([Buffer.from([0x03, value.length + 1, 0x07]), value]));
          default: {
            const flipped = Buffer.from(der);
            const at = der.length - 1 - (input.bytes.length % 8);
            flipped[at] = (flipped[at] ?? 0) ^ 0x01;
            return flipped;
          }
        }
      }
      case 'wrongOid': {
        const choice = good[input.key] ?? p256;
        const oid = WRONG_OIDS[input.oid] ?? OID.unknown;
        if (input.where === 'signature') return signedCsr(spkiOf(choice.key), choice, { sigOid: oid });
        const spki = spkiOf(choice.key);
        // Swap the first (key algorithm) or second (curve / parameters) OID of the SPKI.
        const occurrences: number[] = [];
        for (let p = 0; p + 1 < spki.length && occurrences.length < 2; p++) if (spki[p] === 0x06 && p < 20) occurrences.push(p);
        const p = occurrences[input.where === 'keyAlgorithm' ? 0 : 1] ?? occurrences[0] ?? 4;
        const length = spki[p + 1] ?? 0;
        const replacement = oidContent(oid);
        const algorithmEnd = 2 + (spki[3] ?? 0) + 2;
        const algorithm = derSequence(...splitTlvs(Buffer.concat([spki.subarray(4, p), derTlv(0x06, replacement), spki.subarray(p + 2 + length, algorithmEnd)])));
        const rebuilt = derSequence(algorithm, spki.subarray(algorithmEnd));
        return signedCsr(rebuilt, choice);
      }
      case 'oddKey': {
        const all = [...odd, ...good];
        const choice = all[input.key] ?? p256;
        const edit = spkiEdits[input.spkiEdit] ?? spkiEdits[0]!;
        // SPKI edits 1–8 and 12 describe the P-256 key, 9–11 the RSA key: sign with that key.
        const signer = input.spkiEdit === 0 ? choice : input.spkiEdit >= 9 && input.spkiEdit <= 11 ? rsa : p256;
        return signedCsr(edit(choice), signer);
      }
    }
  };

  const property = fc.asyncProperty(inputArbitrary, async (input) => {
    report.cases++;
    let csr: Buffer | string;
    try {
      csr = materialize(input);
    } catch (error) {
      report.crash(`could not build input ${JSON.stringify(input.kind)}: ${String(error)}`);
      return true;
    }
    const der = typeof csr === 'string' ? Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64') : csr;
    const what = `${input.kind} ${der.toString('hex')}`;
    const caseStarted = performance.now();
    try {
      const checked = await withinMs(checkCsr(csr), MAX_MS_PER_CASE);
      report.accepted++;
      const problem = csrProblem(der);
      if (problem !== null) report.badAcceptance(`${problem}: ${what}`);
      else if (!Buffer.from(checked.der).equals(der)) report.badAcceptance(`remembered DER differs: ${what}`);
      else if (opensslLeft > 0) {
        opensslLeft--;
        const result = spawnSync('openssl', ['req', '-inform', 'DER', '-verify', '-noout'], { input: der, encoding: 'utf8', timeout: 10_000 });
        if (result.status !== 0) report.badAcceptance(`openssl req -verify refuses it (${result.stderr.trim().split('\n')[0] ?? ''}): ${what}`);
      }
    } catch (error) {
      if (error instanceof BrokerError && error.kind === 'invalid' && /^pki\.csr_[a-z_]+$/.test(error.code)) report.refuse(error.code);
      else report.crash(`${error instanceof BrokerError ? `BrokerError ${error.kind} ${error.code}` : String(error)}: ${what}`);
    }
    report.maxMs = Math.max(report.maxMs, performance.now() - caseStarted);
    return true;
  });
  await fc.assert(property, { numRuns: runs, seed });
  report.elapsedMs = Date.now() - started;
  return report;
}

/** The TLVs of a concatenation (short or long lengths). */
function splitTlvs(bytes: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let offset = 0;
  while (offset + 1 < bytes.length) {
    const first = bytes[offset + 1] ?? 0;
    let length = first;
    let header = 2;
    if (first & 0x80) {
      const count = first & 0x7f;
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + (bytes[offset + 2 + i] ?? 0);
      header += count;
    }
    out.push(bytes.subarray(offset, offset + header + length));
    offset += header + length;
  }
  return out;
}

/** The three elements of a well-formed CSR (raw TLVs), or null. */
function derChildrenLoose(der: Buffer): [Buffer, Buffer, Buffer] | null {
  const [outer] = splitTlvs(der);
  if (outer === undefined) return null;
  const headerLength = (outer[1] ?? 0) & 0x80 ? 2 + ((outer[1] ?? 0) & 0x7f) : 2;
  const [info, algorithm, signature] = splitTlvs(outer.subarray(headerLength));
  return info === undefined || algorithm === undefined || signature === undefined ? null : [info, algorithm, signature];
}
