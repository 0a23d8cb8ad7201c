/**
 * A fuzzer for checkCsr (fast-check): valid CSRs mutated (bit flips, byte changes, truncation,
 * insertion, deletion, edits of TLV length bytes, duplicated TLVs), CSRs generated with random
 * keys, extensions, names, attributes and signature algorithms (validly signed, so that the
 * checks behind proof of possession run), DER trees shaped like a CSR, raw bytes, and PEM.
 *
 * Properties, for every input:
 * 1. checkCsr resolves, or rejects with a BrokerError of kind invalid and a `pki.csr_*` code;
 *    never anything else (DESIGN.md invariant 8: bad input is INVALID_ARGUMENT, never a crash);
 * 2. it never accepts a CSR whose signature does not verify: every accepted CSR is verified
 *    again here, independently (generic key decoding, node:crypto, synchronous);
 * 3. it decides exactly as the reference implementation (check-csr-reference.ts), except for
 *    the EC point at infinity, on which the reference aborted the process (not run there);
 * 4. the SPKI it remembers for the leaf is the key's own export;
 * 5. it ends quickly: inputs are bounded (≤ 16 KiB + a little), and each check must take less
 *    than {@link MAX_MS_PER_INPUT} — a hang detector, far above the ≈ 1 ms a check takes.
 *
 * `fuzzCsrReader(runs)` is for scripts too (e.g. 10,000 runs); the unit test runs 1,000 with a
 * fixed seed. Keys are fresh per call and ECDSA signatures are randomized, so a failure prints
 * the whole counterexample (hex) rather than relying on the seed alone.
 */
import { expect } from 'chai';
import { ECDH, createPublicKey, generateKeyPairSync, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import fc from 'fast-check';
import {
  CsrAttributeOid,
  ExtendedKeyUsageOid,
  ExtensionOid,
  SignatureAlgorithmOid,
  checkCsr,
  derBoolean,
  derChildren,
  derInteger,
  derNamedBits,
  derOctetString,
  derOid,
  derParseSingle,
  derSequence,
  derTlv,
  DerTag,
  parseSignedData,
} from '../../../src/pki/index.js';
import { buildCsr, csrPem, type CsrAttribute, type CsrExtension, type CsrOptions } from '../../helpers/csr-builder.js';
import { checkCsrReference } from './check-csr-reference.js';
import { csrOutcome, csrWithSpki, expectRememberedSpki, p256Spki, type CsrOutcome } from './csr-differential.js';

/** Per-input time limit of property 5, in ms. */
export const MAX_MS_PER_INPUT = 2000;

/** What a fuzzing run saw. */
export interface CsrFuzzReport {
  readonly runs: number;
  readonly accepted: number;
  /** Refusals by error code. */
  readonly refused: Readonly<Record<string, number>>;
  /** The slowest check, in ms. */
  readonly maxMs: number;
}

/** Digest of each signature algorithm OID, for the independent verification. */
const DIGESTS: Readonly<Record<string, string | null>> = Object.freeze({
  [SignatureAlgorithmOid.ecdsaWithSha256]: 'sha256',
  [SignatureAlgorithmOid.ecdsaWithSha384]: 'sha384',
  [SignatureAlgorithmOid.ecdsaWithSha512]: 'sha512',
  [SignatureAlgorithmOid.sha256WithRsa]: 'sha256',
  [SignatureAlgorithmOid.sha384WithRsa]: 'sha384',
  [SignatureAlgorithmOid.sha512WithRsa]: 'sha512',
  [SignatureAlgorithmOid.ed25519]: null,
});

/** Property 2, checked without any code of src/pki but the DER reader. */
function signatureVerifiesIndependently(der: Uint8Array): boolean {
  const signed = parseSignedData(der, 'CSR');
  const info = derChildren(derParseSingle(signed.tbs, DerTag.sequence, 'info'), 'info');
  info.next();
  info.next();
  const spki = info.next().raw;
  const digest = DIGESTS[signed.algorithmOid];
  if (digest === undefined) return false;
  return cryptoVerify(digest, signed.tbs, createPublicKey({ key: Buffer.from(spki), format: 'der', type: 'spki' }), signed.signature);
}

// ---- mutations of valid CSRs -------------------------------------------------------------

type Mutation =
  | { readonly op: 'flip'; readonly at: number; readonly bit: number }
  | { readonly op: 'set'; readonly at: number; readonly value: number }
  | { readonly op: 'truncate'; readonly at: number }
  | { readonly op: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly op: 'delete'; readonly at: number; readonly count: number }
  | { readonly op: 'length'; readonly which: number; readonly edit: 'plus' | 'minus' | 'long' | 'indefinite' | 'zero' | 'huge' }
  | { readonly op: 'duplicate'; readonly which: number };

/** Where each TLV header of a DER buffer is (walking constructed elements, tolerant of errors). */
function tlvHeaders(bytes: Uint8Array): { start: number; lengthAt: number; lengthBytes: number; end: number }[] {
  const found: { start: number; lengthAt: number; lengthBytes: number; end: number }[] = [];
  const walk = (from: number, to: number, depth: number): void => {
    let offset = from;
    while (offset < to && depth < 12) {
      const tag = bytes[offset];
      const first = bytes[offset + 1];
      if (tag === undefined || first === undefined) return;
      let length = first;
      let lengthBytes = 1;
      if (first & 0x80) {
        const count = first & 0x7f;
        if (count === 0 || count > 3) return;
        length = 0;
        for (let i = 0; i < count; i++) length = length * 256 + (bytes[offset + 2 + i] ?? 0);
        lengthBytes += count;
      }
      const contentStart = offset + 1 + lengthBytes;
      const end = contentStart + length;
      if (end > to) return;
      found.push({ start: offset, lengthAt: offset + 1, lengthBytes, end });
      if (tag & 0x20) walk(contentStart, end, depth + 1);
      else if (tag === 0x03 && length > 1 && bytes[contentStart] === 0 && bytes[contentStart + 1] === 0x30) walk(contentStart + 1, end, depth + 1);
      else if (tag === 0x04 && length > 0 && bytes[contentStart] === 0x30) walk(contentStart, end, depth + 1);
      offset = end;
    }
  };
  walk(0, bytes.length, 0);
  return found;
}

function mutate(input: Uint8Array, mutation: Mutation): Buffer {
  const bytes = Buffer.from(input);
  if (bytes.length === 0) return bytes;
  const at = (index: number): number => index % bytes.length;
  switch (mutation.op) {
    case 'flip':
      bytes[at(mutation.at)] = (bytes[at(mutation.at)] ?? 0) ^ (1 << mutation.bit);
      return bytes;
    case 'set':
      bytes[at(mutation.at)] = mutation.value;
      return bytes;
    case 'truncate':
      return bytes.subarray(0, at(mutation.at));
    case 'insert':
      return Buffer.concat([bytes.subarray(0, at(mutation.at)), mutation.bytes, bytes.subarray(at(mutation.at))]);
    case 'delete':
      return Buffer.concat([bytes.subarray(0, at(mutation.at)), bytes.subarray(at(mutation.at) + mutation.count)]);
    case 'length': {
      const headers = tlvHeaders(bytes);
      const header = headers[mutation.which % Math.max(headers.length, 1)];
      if (header === undefined) return bytes;
      const last = header.lengthAt + header.lengthBytes - 1;
      const rest = bytes.subarray(header.lengthAt + header.lengthBytes);
      const before = bytes.subarray(0, header.lengthAt);
      switch (mutation.edit) {
        case 'plus':
          bytes[last] = ((bytes[last] ?? 0) + 1) & 0xff;
          return bytes;
        case 'minus':
          bytes[last] = ((bytes[last] ?? 0) + 255) & 0xff;
          return bytes;
        case 'long': {
          // The same length in a longer (non-minimal) form.
          const length = header.end - header.lengthAt - header.lengthBytes;
          return Buffer.concat([before, Buffer.from([0x83, length >> 16, (length >> 8) & 0xff, length & 0xff]), rest]);
        }
        case 'indefinite':
          return Buffer.concat([before, Buffer.from([0x80]), rest, Buffer.from([0, 0])]);
        case 'zero':
          return Buffer.concat([before, Buffer.from([0x00]), rest]);
        case 'huge':
          return Buffer.concat([before, Buffer.from([0x84, 0x7f, 0xff, 0xff, 0xff]), rest]);
      }
      return bytes;
    }
    case 'duplicate': {
      const headers = tlvHeaders(bytes);
      const header = headers[mutation.which % Math.max(headers.length, 1)];
      if (header === undefined) return bytes;
      return Buffer.concat([bytes.subarray(0, header.end), bytes.subarray(header.start, header.end), bytes.subarray(header.end)]);
    }
  }
}

const index = fc.nat({ max: 1 << 14 });
const mutationArbitrary: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: index, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: index, value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: index }),
  fc.record({ op: fc.constant('insert' as const), at: index, bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('delete' as const), at: index, count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ op: fc.constant('length' as const), which: fc.nat({ max: 200 }), edit: fc.constantFrom('plus' as const, 'minus' as const, 'long' as const, 'indefinite' as const, 'zero' as const, 'huge' as const) }),
  fc.record({ op: fc.constant('duplicate' as const), which: fc.nat({ max: 200 }) }),
);

// ---- generated CSRs ----------------------------------------------------------------------

const ascii = (maxLength: number): fc.Arbitrary<string> => fc.string({ unit: 'binary-ascii', maxLength });
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);

const generalName: fc.Arbitrary<Buffer> = fc.oneof(
  fc.array(label, { minLength: 1, maxLength: 4 }).map((labels) => derTlv(0x82, Buffer.from(labels.join('.')))),
  ascii(30).map((text) => derTlv(0x82, Buffer.from(text, 'latin1'))),
  fc.array(label, { minLength: 0, maxLength: 3 }).map((path) => derTlv(0x86, Buffer.from(`spiffe://anonymizer.test/${path.join('/')}`))),
  ascii(40).map((text) => derTlv(0x86, Buffer.from(text, 'latin1'))),
  fc.constantFrom(0, 3, 4, 5, 16, 17).chain((length) => fc.uint8Array({ minLength: length, maxLength: length })).map((address) => derTlv(0x87, address)),
  ascii(20).map((text) => derTlv(0x81, Buffer.from(text, 'latin1'))),
  fc.tuple(fc.constantFrom(0xa0, 0xa4, 0x88, 0x83, 0xa2), fc.uint8Array({ maxLength: 12 })).map(([tag, bytes]) => derTlv(tag, bytes)),
);

const purposes = [
  ExtendedKeyUsageOid.serverAuth,
  ExtendedKeyUsageOid.clientAuth,
  ExtendedKeyUsageOid.codeSigning,
  ExtendedKeyUsageOid.anyExtendedKeyUsage,
  ExtendedKeyUsageOid.ocspSigning,
];
const extensionOids = Object.values(ExtensionOid);

const harmlessName: fc.Arbitrary<Buffer> = fc.oneof(
  fc.array(label, { minLength: 2, maxLength: 4 }).map((labels) => derTlv(0x82, Buffer.from(labels.join('.')))),
  fc.array(label, { minLength: 1, maxLength: 3 }).map((path) => derTlv(0x86, Buffer.from(`spiffe://anonymizer.test/${path.join('/')}`))),
  fc.constantFrom(4, 16).chain((length) => fc.uint8Array({ minLength: length, maxLength: length })).map((address) => derTlv(0x87, address)),
);

const extensionArbitrary: fc.Arbitrary<CsrExtension> = fc
  .tuple(
    fc.oneof(
      fc.tuple(fc.array(harmlessName, { maxLength: 3 }), fc.option(harmlessName, { nil: undefined })).map(([names, uri]) => ({
        oid: ExtensionOid.subjectAltName,
        value: derSequence(...names.filter((name) => name[0] !== 0x86), ...(uri === undefined ? [] : [uri])),
      })),
      fc.array(generalName, { maxLength: 5 }).map((names) => ({ oid: ExtensionOid.subjectAltName, value: derSequence(...names) })),
      mostly(fc.uniqueArray(fc.constantFrom(0, 2, 4), { maxLength: 3 }), fc.uniqueArray(fc.integer({ min: 0, max: 8 }), { maxLength: 4 })).map((bits) => ({ oid: ExtensionOid.keyUsage, value: derNamedBits(bits) })),
      fc.array(fc.constantFrom(...purposes), { maxLength: 3 }).map((list) => ({ oid: ExtensionOid.extKeyUsage, value: derSequence(...list.map(derOid)) })),
      fc.tuple(fc.boolean(), fc.option(fc.nat({ max: 3 }), { nil: undefined })).map(([ca, path]) => ({
        oid: ExtensionOid.basicConstraints,
        value: derSequence(...(ca ? [derBoolean(true)] : []), ...(path === undefined ? [] : [derInteger(path)])),
      })),
      fc.uint8Array({ maxLength: 24 }).map((id) => ({ oid: ExtensionOid.subjectKeyIdentifier, value: derOctetString(id) })),
      fc.tuple(fc.constantFrom(...extensionOids, '1.3.6.1.4.1.99999.1'), fc.uint8Array({ maxLength: 24 })).map(([oid, value]) => ({ oid, value })),
    ),
    fc.boolean(),
  )
  .map(([extension, critical]) => ({ ...extension, critical }));

const attributeArbitrary: fc.Arbitrary<CsrAttribute> = fc.oneof(
  fc.constant({ oid: CsrAttributeOid.challengePassword, values: [derTlv(0x0c, Buffer.from('pw'))] }),
  fc.constant({ oid: CsrAttributeOid.extensionRequest, values: [derSequence()] }),
  fc.tuple(fc.constantFrom(CsrAttributeOid.unstructuredName, '1.2.3.4'), fc.uint8Array({ maxLength: 10 })).map(([oid, value]) => ({ oid, values: [derTlv(0x04, value)] })),
);

const signatureChoices: readonly { oid: string; digest: string | null; nullParameters?: boolean }[] = [
  { oid: SignatureAlgorithmOid.ecdsaWithSha256, digest: 'sha256' },
  { oid: SignatureAlgorithmOid.ecdsaWithSha384, digest: 'sha384' },
  { oid: SignatureAlgorithmOid.ecdsaWithSha1, digest: 'sha1' },
  { oid: SignatureAlgorithmOid.sha256WithRsa, digest: 'sha256', nullParameters: true },
  { oid: SignatureAlgorithmOid.sha256WithRsa, digest: 'sha256' },
  { oid: SignatureAlgorithmOid.sha512WithRsa, digest: 'sha512', nullParameters: true },
  { oid: SignatureAlgorithmOid.sha1WithRsa, digest: 'sha1', nullParameters: true },
  { oid: SignatureAlgorithmOid.ed25519, digest: null },
  { oid: SignatureAlgorithmOid.ed25519, digest: null, nullParameters: true },
];

interface GeneratedCsr {
  readonly key: number;
  readonly options: CsrOptions;
  readonly corruptSignature: boolean;
}

/** Mostly `usual`, sometimes one of `unusual`: deep checks run only when the early ones pass. */
function mostly<T>(usual: fc.Arbitrary<T>, ...unusual: fc.Arbitrary<T>[]): fc.Arbitrary<T> {
  return fc.oneof({ weight: 4 * unusual.length, arbitrary: usual }, ...unusual.map((arbitrary) => ({ weight: 1, arbitrary })));
}

const generatedArbitrary: fc.Arbitrary<GeneratedCsr> = fc
  .record({
    key: mostly(fc.nat({ max: 3 }), fc.constantFrom(4, 5)),
    corruptSignature: mostly(fc.constant(false), fc.constant(true)),
    commonName: fc.string({ maxLength: 20 }),
    extensions: fc.array(extensionArbitrary, { maxLength: 3 }),
    attributes: mostly<readonly CsrAttribute[]>(fc.constant([]), fc.array(attributeArbitrary, { minLength: 1, maxLength: 2 })),
    signature: mostly<(typeof signatureChoices)[number] | undefined>(fc.constant(undefined), fc.constantFrom(...signatureChoices)),
    version: mostly(fc.constant(0), fc.constantFrom(1, 2)),
  })
  .map(({ key, corruptSignature, signature, ...options }) => ({ key, corruptSignature, options: { ...options, ...(signature === undefined ? {} : { signature }) } }));

// ---- DER trees ---------------------------------------------------------------------------

function tlvTree(depth: number): fc.Arbitrary<Buffer> {
  const leaf = fc
    .tuple(fc.constantFrom(0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x0c, 0x13, 0x16, 0x17, 0x18, 0x80, 0x81, 0x82, 0x86, 0x87), fc.uint8Array({ maxLength: 24 }))
    .map(([tag, content]) => derTlv(tag, content));
  if (depth === 0) return leaf;
  return fc.oneof(
    leaf,
    fc.tuple(fc.constantFrom(0x30, 0x31, 0xa0, 0xa3), fc.array(tlvTree(depth - 1), { maxLength: 4 })).map(([tag, children]) => derTlv(tag, Buffer.concat(children))),
  );
}

/** Whether a signature algorithm OID suits a key (for signing the 'spki' inputs). */
function fitsKey(oid: string, key: KeyObject): boolean {
  const type = key.asymmetricKeyType;
  if (type === 'ed25519') return oid === SignatureAlgorithmOid.ed25519;
  if (type === 'rsa') return oid === SignatureAlgorithmOid.sha256WithRsa;
  return oid === SignatureAlgorithmOid.ecdsaWithSha256;
}

/**
 * True if a CSR's SPKI is an EC point at infinity: the reference checker aborted the process on
 * those (Node's asymmetricKeyDetails), so it is not asked about them.
 */
function carriesPointAtInfinity(csr: Uint8Array | string): boolean {
  try {
    const der = typeof csr === 'string' ? Buffer.from(csr.replace(/-----[^-]+-----|\s/g, ''), 'base64') : csr;
    const info = derChildren(derParseSingle(parseSignedData(der, 'CSR').tbs, DerTag.sequence, 'info'), 'info');
    info.next();
    info.next();
    const spki = derChildren(info.next(), 'spki');
    spki.next();
    const key = spki.next();
    return key.tag === 0x03 && key.content.length === 2 && key.content[1] === 0;
  } catch {
    return false;
  }
}

// ---- the fuzzer --------------------------------------------------------------------------

type FuzzInput =
  | { readonly kind: 'mutated'; readonly seed: number; readonly mutations: readonly Mutation[]; readonly pem: boolean }
  | { readonly kind: 'generated'; readonly csr: GeneratedCsr }
  | { readonly kind: 'tree'; readonly spki: number; readonly parts: readonly Buffer[]; readonly signature: Uint8Array }
  | { readonly kind: 'spki'; readonly spki: number; readonly signer: number; readonly flips: readonly number[] }
  | { readonly kind: 'bytes'; readonly bytes: Uint8Array };

/**
 * Runs the fuzzer: `runs` inputs, each checked against the five properties above.
 * @param runs number of inputs (the unit test uses 1,000; a script may use 10,000)
 * @param options.seed fast-check seed (default: random; the failure report prints it)
 * @throws the property failure, with the counterexample
 */
export async function fuzzCsrReader(runs: number, options: { seed?: number } = {}): Promise<CsrFuzzReport> {
  const keys: KeyObject[] = [
    generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey,
    generateKeyPairSync('ec', { namedCurve: 'secp384r1' }).privateKey,
    generateKeyPairSync('ed25519').privateKey,
    generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    generateKeyPairSync('ec', { namedCurve: 'prime192v1' }).privateKey,
    generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey,
  ];
  const spkis: Buffer[] = keys.map((key) => createPublicKey(key).export({ format: 'der', type: 'spki' }));
  // Public keys at the edges of the fast import: point forms, the point at infinity, lengths.
  const point = spkis[0]!.subarray(26);
  spkis.push(
    p256Spki(ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'compressed') as Buffer),
    p256Spki(ECDH.convertKey(point, 'prime256v1', undefined, undefined, 'hybrid') as Buffer),
    p256Spki(Buffer.from([0])),
    Buffer.from('3016301006072a8648ce3d020106052b8104002203020000', 'hex'),
    p256Spki(Buffer.concat([point, Buffer.from([0])])),
    createPublicKey(generateKeyPairSync('rsa', { modulusLength: 2056 }).privateKey).export({ format: 'der', type: 'spki' }),
  );
  const san = derSequence(derTlv(0x86, Buffer.from('spiffe://anonymizer.test/media/blur')), derTlv(0x82, Buffer.from('blur.media.internal')), derTlv(0x87, Buffer.from([10, 0, 0, 1])));
  const seeds: Buffer[] = keys.slice(0, 4).flatMap((key) => [
    buildCsr(key),
    buildCsr(key, {
      extensions: [
        { oid: ExtensionOid.subjectAltName, value: san },
        { oid: ExtensionOid.keyUsage, critical: true, value: derNamedBits([0]) },
        { oid: ExtensionOid.basicConstraints, critical: true, value: derSequence() },
      ],
    }),
  ]);

  const inputArbitrary: fc.Arbitrary<FuzzInput> = fc.oneof(
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('mutated' as const), seed: fc.nat({ max: seeds.length - 1 }), mutations: fc.array(mutationArbitrary, { minLength: 1, maxLength: 4 }), pem: fc.boolean() }) },
    { weight: 4, arbitrary: fc.record({ kind: fc.constant('generated' as const), csr: generatedArbitrary }) },
    {
      weight: 1,
      arbitrary: fc.record({
        kind: fc.constant('tree' as const),
        spki: fc.nat({ max: spkis.length }),
        parts: fc.array(tlvTree(3), { minLength: 1, maxLength: 4 }),
        signature: fc.uint8Array({ maxLength: 80 }),
      }),
    },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('bytes' as const), bytes: fc.uint8Array({ maxLength: 600 }) }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('spki' as const),
        spki: fc.nat({ max: spkis.length - 1 }),
        signer: fc.nat({ max: keys.length - 1 }),
        flips: fc.array(fc.nat({ max: 8 * 1100 }), { maxLength: 2 }),
      }),
    },
  );

  const materialize = (input: FuzzInput): Uint8Array | string => {
    switch (input.kind) {
      case 'mutated': {
        const der = input.mutations.reduce<Uint8Array>((bytes, mutation) => mutate(bytes, mutation), seeds[input.seed] ?? Buffer.alloc(0));
        return input.pem ? csrPem(der) : der;
      }
      case 'generated': {
        const key = keys[input.csr.key % keys.length] ?? keys[0]!;
        let der: Buffer;
        try {
          der = buildCsr(key, input.csr.options);
        } catch {
          // A digest the key cannot sign with (e.g. Ed25519 with SHA-256): its own algorithm.
          der = buildCsr(key, Object.fromEntries(Object.entries(input.csr.options).filter(([name]) => name !== 'signature')));
        }
        if (input.csr.corruptSignature) der[der.length - 1] = (der[der.length - 1] ?? 0) ^ 0x40;
        return der;
      }
      case 'tree': {
        // CSR-shaped: SEQUENCE { SEQUENCE { INTEGER 0, tree…, SPKI? }, tree, BIT STRING }.
        const [first = Buffer.alloc(0), ...rest] = input.parts;
        const spki = spkis[input.spki];
        const info = derSequence(derInteger(0), derSequence(), ...(spki === undefined ? [first] : [spki]), derTlv(0xa0, Buffer.concat(rest)));
        return derSequence(info, derSequence(derOid(SignatureAlgorithmOid.ecdsaWithSha256)), derTlv(0x03, Buffer.concat([Buffer.from([0]), input.signature])));
      }
      case 'bytes':
        return input.bytes;
      case 'spki': {
        // The SPKI, some of its bits flipped, signed by one of the keys (its own, or another).
        const spki = Buffer.from(spkis[input.spki] ?? spkis[0]!);
        for (const bit of input.flips) {
          const at = Math.floor(bit / 8) % spki.length;
          spki[at] = (spki[at] ?? 0) ^ (1 << (bit % 8));
        }
        const key = keys[input.signer] ?? keys[0]!;
        const signature = signatureChoices.find((choice) => choice.digest !== 'sha1' && fitsKey(choice.oid, key)) ?? signatureChoices[0]!;
        return csrWithSpki(spki, key, signature);
      }
    }
  };

  let accepted = 0;
  let maxMs = 0;
  const refused: Record<string, number> = {};
  const property = fc.asyncProperty(inputArbitrary, async (input) => {
    const csr = materialize(input);
    const what = typeof csr === 'string' ? csr : Buffer.from(csr).toString('hex');
    const started = process.hrtime.bigint();
    const outcome: CsrOutcome = await csrOutcome(checkCsr, csr);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    maxMs = Math.max(maxMs, ms);
    expect(ms, `slow input ${what}`).to.be.lessThan(MAX_MS_PER_INPUT);
    if (outcome.accepted) {
      accepted++;
      expect(signatureVerifiesIndependently(Buffer.from(outcome.der, 'hex')), `accepted without proof of possession: ${what}`).to.equal(true);
      await expectRememberedSpki(checkCsr, csr);
    } else {
      expect(outcome.thrown, `not a BrokerError for ${what}`).to.equal('BrokerError');
      expect(outcome.kind, `${outcome.code ?? ''} ${what}`).to.equal('invalid');
      expect(outcome.code, what).to.match(/^pki\.csr_[a-z_]+$/);
      expect(outcome.publicMessage, what).to.not.equal('internal error');
      const code = outcome.code ?? '';
      refused[code] = (refused[code] ?? 0) + 1;
    }
    if (!carriesPointAtInfinity(csr)) {
      expect(outcome, `differs from the reference for ${what}`).to.deep.equal(await csrOutcome(checkCsrReference, csr));
    }
  });
  await fc.assert(property, { numRuns: runs, ...(options.seed === undefined ? {} : { seed: options.seed }), endOnFailure: true });
  return { runs, accepted, refused, maxMs };
}
