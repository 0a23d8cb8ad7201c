/**
 * An independent judge of PKCS#10 CSRs for the fuzzers: its own small DER reader (no code of
 * src/pki), node:crypto for the key and the signature, and the rules of check-csr.ts's
 * contract written out again: strict DER, version 1, an accepted key (P-256, P-384, Ed25519,
 * RSA 2048–8192 bits with exponent 65537), a signature algorithm that fits the key and is not
 * SHA-1/MD5, a signature that verifies, at most 16 KiB, only the extensionRequest attribute.
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';

/** Largest CSR a valid one may be (check-csr's documented cap), in bytes. */
const MAX_CSR_BYTES = 16 * 1024;

interface Tlv {
  readonly tag: number;
  /** The whole element: header and content. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

/** One DER element at `offset`, strict: definite minimal lengths only, single-byte tags. */
function readTlv(bytes: Buffer, offset: number): Tlv {
  const tag = bytes[offset];
  const first = bytes[offset + 1];
  if (tag === undefined || first === undefined) throw new Error('truncated header');
  if ((tag & 0x1f) === 0x1f) throw new Error('multi-byte tag');
  let length = first;
  let header = 2;
  if (first & 0x80) {
    const count = first & 0x7f;
    if (count === 0 || count > 3) throw new Error('indefinite or huge length');
    length = 0;
    for (let i = 0; i < count; i++) {
      const byte = bytes[offset + 2 + i];
      if (byte === undefined) throw new Error('truncated length');
      if (i === 0 && byte === 0) throw new Error('non-minimal length');
      length = length * 256 + byte;
    }
    if (length < 0x80) throw new Error('non-minimal length');
    header += count;
  }
  const end = offset + header + length;
  if (end > bytes.length) throw new Error('content past the end');
  return { tag, raw: bytes.subarray(offset, end), content: bytes.subarray(offset + header, end) };
}

/** The children of a constructed element; its content must be exactly their concatenation. */
function childrenOf(parent: Tlv): Tlv[] {
  const children: Tlv[] = [];
  let offset = 0;
  while (offset < parent.content.length) {
    const child = readTlv(parent.content, offset);
    children.push(child);
    offset += child.raw.length;
  }
  return children;
}

/** The DER of an OBJECT IDENTIFIER's content, as dotted text. */
function oidText(content: Buffer): string {
  const parts: number[] = [];
  let value = 0;
  for (const byte of content) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  const [head = 0, ...rest] = parts;
  const first = head < 40 ? 0 : head < 80 ? 1 : 2;
  return [first, head - first * 40, ...rest].join('.');
}

/** Signature algorithms a valid CSR may use: OID → digest and key kind. */
const SIGNATURES: Readonly<Record<string, { digest: string | null; key: string }>> = Object.freeze({
  '1.2.840.10045.4.3.2': { digest: 'sha256', key: 'ec' },
  '1.2.840.10045.4.3.3': { digest: 'sha384', key: 'ec' },
  '1.2.840.10045.4.3.4': { digest: 'sha512', key: 'ec' },
  '1.2.840.113549.1.1.11': { digest: 'sha256', key: 'rsa' },
  '1.2.840.113549.1.1.12': { digest: 'sha384', key: 'rsa' },
  '1.2.840.113549.1.1.13': { digest: 'sha512', key: 'rsa' },
  '1.3.101.112': { digest: null, key: 'ed25519' },
});

const EXTENSION_REQUEST = '1.2.840.113549.1.9.14';

/** Why a key may not be certified, or null if it may. */
function keyProblem(key: KeyObject): string | null {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case 'ec':
      return details?.namedCurve === 'prime256v1' || details?.namedCurve === 'secp384r1' ? null : `curve ${details?.namedCurve ?? '?'}`;
    case 'ed25519':
      return null;
    case 'rsa': {
      const bits = details?.modulusLength ?? 0;
      if (bits < 2048 || bits > 8192) return `RSA ${bits} bits`;
      return details?.publicExponent === 65537n ? null : `RSA exponent ${String(details?.publicExponent)}`;
    }
    default:
      return `key type ${key.asymmetricKeyType ?? '?'}`;
  }
}

/**
 * Why `der` is not a valid CSR, or null if it is one. Never throws.
 * @param der the CSR's DER (PEM is decoded by the caller)
 */
export function csrProblem(der: Buffer): string | null {
  try {
    if (der.length > MAX_CSR_BYTES) return `${der.length} bytes`;
    const outer = readTlv(der, 0);
    if (outer.raw.length !== der.length) return 'bytes after the CSR';
    if (outer.tag !== 0x30) return 'not a SEQUENCE';
    const [info, algorithm, signature, ...extra] = childrenOf(outer);
    if (info === undefined || algorithm === undefined || signature === undefined || extra.length > 0) return 'not 3 elements';
    if (info.tag !== 0x30 || algorithm.tag !== 0x30 || signature.tag !== 0x03) return 'wrong outer tags';
    if (signature.content[0] !== 0) return 'signature with unused bits';
    const [version, subject, spki, attributes, ...rest] = childrenOf(info);
    if (version === undefined || subject === undefined || spki === undefined || attributes === undefined || rest.length > 0) return 'info not 4 elements';
    if (version.tag !== 0x02 || version.content.length !== 1 || version.content[0] !== 0) return 'version not 1';
    if (subject.tag !== 0x30 || spki.tag !== 0x30 || attributes.tag !== 0xa0) return 'wrong info tags';
    for (const attribute of childrenOf(attributes)) {
      const [oid] = childrenOf(attribute);
      if (oid?.tag !== 0x06 || oidText(oid.content) !== EXTENSION_REQUEST) return 'an attribute other than extensionRequest';
    }
    const [algorithmOid, ...parameters] = childrenOf(algorithm);
    if (algorithmOid?.tag !== 0x06) return 'no signature algorithm OID';
    const scheme = SIGNATURES[oidText(algorithmOid.content)];
    if (scheme === undefined) return `signature algorithm ${oidText(algorithmOid.content)}`;
    if (parameters.length > 1 || (parameters[0] !== undefined && (parameters[0].tag !== 0x05 || scheme.key !== 'rsa'))) return 'signature algorithm parameters';
    const key = createPublicKey({ key: spki.raw, format: 'der', type: 'spki' });
    // The SPKI must be the key's own encoding (no explicit curve parameters, no odd forms but point compression).
    const problem = keyProblem(key);
    if (problem !== null) return problem;
    if (key.asymmetricKeyType !== scheme.key) return `a ${scheme.key} signature by a ${key.asymmetricKeyType ?? '?'} key`;
    if (!cryptoVerify(scheme.digest, info.raw, key, signature.content.subarray(1))) return 'signature does not verify';
    return null;
  } catch (error) {
    return `unreadable: ${error instanceof Error ? error.message : String(error)}`;
  }
}
