/**
 * The leaf certificate profile as precomputed DER (DESIGN.md "Performance shape").
 *
 * @peculiar/x509 builds one TBSCertificate per (issuer, profile, leaf key type, signature
 * algorithm) — unsigned: the signature field is a placeholder and no CA signature is made — and
 * the template keeps the bytes that are the same for every leaf of that kind: version, signature
 * algorithm, issuer name, subject (empty), and the extensions basicConstraints, keyUsage,
 * extKeyUsage and authorityKeyIdentifier, in the library's order. Per request it writes only
 * the serial number, the validity (UTCTime through 2049, GeneralizedTime from 2050: RFC 5280
 * §4.1.2.5), the SubjectPublicKeyInfo, the subjectKeyIdentifier and the subjectAltName.
 *
 * Every template checks itself when built: re-encoding the placeholder leaf it was built from
 * must give the library's bytes exactly, or it is refused (`pki.leaf_template`). The unit tests
 * compare whole certificates, both ways, for every profile, key type and issuer key type.
 * Every extension but subjectKeyIdentifier and subjectAltName must depend on issuer, profile
 * and key type only (that test would catch one that does not).
 */
import * as x509 from '@peculiar/x509';
import type { SignatureAlgorithm } from '../core/index.js';
import { parseExtension } from './certificate-fields.js';
import { DerCursor, DerTag, derChildren, derParseSingle } from './der-reader.js';
import { derBitString, derContext, derInteger, derOctetString, derSequence, derTime } from './der-writer.js';
import { encodeGeneralNames } from './general-names.js';
import type { LeafIssuer } from './leaf-issuer.js';
import type { LeafPlan } from './leaf-plan.js';
import { extendedKeyUsagesOf, leafKeyUsagesOf, type LeafProfile } from './leaf-profile.js';
import { ExtensionOid } from './oids.js';
import { internal } from './pki-error.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  extendedKeyUsageExtension,
  keyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
} from './profile-extensions.js';
import type { LeafKeyType } from './public-key-type.js';
import { parseSignedData, x509SignatureOf } from './signed-data.js';
import { parseSpiffeId } from './spiffe-id.js';

/** An extension of the template: the same bytes in every leaf, or filled per leaf. */
type TemplateExtension =
  | { readonly kind: 'fixed'; readonly der: Uint8Array }
  /** `head`: extnID and critical, to be followed by the extnValue OCTET STRING. */
  | { readonly kind: 'subjectKeyIdentifier' | 'subjectAltName'; readonly head: Uint8Array };

/** Precomputed DER of one leaf profile for one issuer, signature algorithm and key type. */
export class LeafTemplate {
  /** The Signer's algorithm: how its signatures go into the certificate. */
  readonly algorithm: SignatureAlgorithm;
  readonly #version: Uint8Array;
  /** signature AlgorithmIdentifier then issuer Name: adjacent in TBSCertificate. */
  readonly #algorithmAndIssuer: Uint8Array;
  readonly #subject: Uint8Array;
  readonly #extensions: readonly TemplateExtension[];
  /** The outer signatureAlgorithm of Certificate (the same AlgorithmIdentifier). */
  readonly #signatureAlgorithm: Uint8Array;

  private constructor(
    algorithm: SignatureAlgorithm,
    parts: { version: Uint8Array; algorithmAndIssuer: Uint8Array; subject: Uint8Array; extensions: readonly TemplateExtension[]; signatureAlgorithm: Uint8Array },
  ) {
    this.algorithm = algorithm;
    this.#version = parts.version;
    this.#algorithmAndIssuer = parts.algorithmAndIssuer;
    this.#subject = parts.subject;
    this.#extensions = parts.extensions;
    this.#signatureAlgorithm = parts.signatureAlgorithm;
  }

  /**
   * Splits a Certificate built by @peculiar/x509 into fixed bytes and the places a leaf fills.
   * @throws DerError if it is not the shape of a leaf (v3, no unique IDs, extensions present)
   */
  static fromCertificate(der: Uint8Array, algorithm: SignatureAlgorithm): LeafTemplate {
    const what = 'leaf template';
    const signed = parseSignedData(der, what);
    const tbs = derChildren(derParseSingle(signed.tbs, DerTag.sequence, what), what);
    const version = tbs.read(0xa0, 'version').raw;
    tbs.read(DerTag.integer, 'serialNumber');
    const signatureAlgorithm = tbs.read(DerTag.sequence, 'signature').raw;
    const issuer = tbs.read(DerTag.sequence, 'issuer').raw;
    tbs.read(DerTag.sequence, 'validity');
    const subject = tbs.read(DerTag.sequence, 'subject').raw;
    tbs.read(DerTag.sequence, 'subjectPublicKeyInfo');
    const wrapper = tbs.read(0xa3, 'extensions');
    tbs.end();
    const list = derChildren(derParseSingle(wrapper.content, DerTag.sequence, what), what);
    const extensions: TemplateExtension[] = [];
    while (!list.done) {
      const element = list.read(DerTag.sequence, 'extension');
      const { oid } = parseExtension(element.content, what);
      if (oid === ExtensionOid.subjectKeyIdentifier || oid === ExtensionOid.subjectAltName) {
        const fields = new DerCursor(element.content, what);
        const extnId = fields.read(DerTag.oid, 'extnID').raw;
        const critical = fields.readOptional(DerTag.boolean)?.raw ?? new Uint8Array(0);
        fields.read(DerTag.octetString, 'extnValue');
        fields.end();
        extensions.push({ kind: oid === ExtensionOid.subjectAltName ? 'subjectAltName' : 'subjectKeyIdentifier', head: Buffer.concat([extnId, critical]) });
      } else {
        extensions.push({ kind: 'fixed', der: element.raw });
      }
    }
    return new LeafTemplate(algorithm, {
      version,
      algorithmAndIssuer: Buffer.concat([signatureAlgorithm, issuer]),
      subject,
      extensions,
      signatureAlgorithm: signed.algorithmRaw,
    });
  }

  /** The TBSCertificate of a leaf: the bytes to sign. */
  encodeTbs(plan: LeafPlan): Buffer {
    const extensions = this.#extensions.map((extension) => {
      switch (extension.kind) {
        case 'fixed':
          return extension.der;
        case 'subjectKeyIdentifier':
          return derSequence(extension.head, derOctetString(derOctetString(plan.keyId)));
        case 'subjectAltName':
          return derSequence(extension.head, derOctetString(encodeGeneralNames(plan.subjectAltNames)));
      }
    });
    return derSequence(
      this.#version,
      derInteger(BigInt(`0x${plan.serialNumber}`)),
      this.#algorithmAndIssuer,
      derSequence(derTime(plan.validity.notBefore), derTime(plan.validity.notAfter)),
      this.#subject,
      plan.spki,
      derContext(3, derSequence(...extensions), true),
    );
  }

  /**
   * The Certificate: `tbs`, the signature algorithm and the Signer's signature (ECDSA `r || s`
   * becomes DER Ecdsa-Sig-Value).
   * @throws RangeError if an ECDSA signature has the wrong length
   */
  encodeCertificate(tbs: Uint8Array, signature: Uint8Array): Buffer {
    return derSequence(tbs, this.#signatureAlgorithm, derBitString(x509SignatureOf(this.algorithm, signature)));
  }
}

/**
 * The @peculiar/x509 parameters of a leaf, shared by the template and the reference path: the
 * profile of issueLeafCertificate in the library's terms. Without signing key or signature.
 */
export function leafGeneratorParams(plan: LeafPlan): Omit<x509.X509CertificateCreateWithKeyParams, 'signingKey'> {
  const issuer = plan.issuer.issuer;
  return {
    serialNumber: plan.serialNumber,
    issuer: issuer.name,
    notBefore: plan.validity.notBefore,
    notAfter: plan.validity.notAfter,
    publicKey: plan.spki,
    signingAlgorithm: issuer.signerCrypto.signingAlgorithm,
    extensions: [
      basicConstraintsExtension(false),
      keyUsageExtension(leafKeyUsagesOf(plan.keyType)),
      extendedKeyUsageExtension(extendedKeyUsagesOf(plan.profile)),
      subjectKeyIdentifierExtension(plan.keyId),
      authorityKeyIdentifierExtension(issuer.keyId),
      subjectAltNameExtension(plan.subjectAltNames, true),
    ],
  };
}

/** Placeholder signature lengths: what the library's signature formatters expect. */
const PLACEHOLDER_SIGNATURE_BYTES: Readonly<Record<SignatureAlgorithm, number>> = Object.freeze({ ES256: 64, ES384: 96, RS256: 384, EdDSA: 64 });

/**
 * Placeholders for what every leaf fills itself. Only issuer, profile and key type of a request
 * reach a template: it is the same whichever request comes first. The SPKI is only parsed as
 * ASN.1 by the library, so an all-zero Ed25519-shaped one serves for every key type.
 */
const PLACEHOLDER = Object.freeze({
  serialNumber: '01',
  validity: Object.freeze({ notBefore: new Date('2026-01-01T00:00:00Z'), notAfter: new Date('2026-01-01T01:00:00Z') }),
  spki: Buffer.from(`302a300506032b6570032100${'00'.repeat(32)}`, 'hex'),
  keyId: Buffer.alloc(20),
  spiffeId: 'spiffe://leaf-template.invalid/leaf',
});

/**
 * Builds the template for leaves of `profile` with keys of `keyType` issued by `issuer`, with
 * @peculiar/x509 and unsigned, and checks that it reproduces the library's TBSCertificate of
 * the placeholder leaf byte for byte.
 * @throws BrokerError internal `pki.leaf_template`
 */
export async function buildLeafTemplate(issuer: LeafIssuer, profile: LeafProfile, keyType: LeafKeyType): Promise<LeafTemplate> {
  const plan: LeafPlan = {
    issuer,
    profile,
    keyType,
    spiffeId: parseSpiffeId(PLACEHOLDER.spiffeId),
    subjectAltNames: [{ kind: 'uniformResourceIdentifier', text: PLACEHOLDER.spiffeId }],
    validity: PLACEHOLDER.validity,
    serialNumber: PLACEHOLDER.serialNumber,
    spki: PLACEHOLDER.spki,
    keyId: PLACEHOLDER.keyId,
  };
  const signerCrypto = issuer.issuer.signerCrypto;
  const algorithm = signerCrypto.signer.algorithm;
  // Signing merges the key's algorithm into signingAlgorithm; merged here too, the library
  // writes the same AlgorithmIdentifier without being asked to sign.
  const library = await x509.X509CertificateGenerator.create(
    {
      ...leafGeneratorParams(plan),
      signingAlgorithm: { ...signerCrypto.signingAlgorithm, ...signerCrypto.signingKey.algorithm },
      signature: new Uint8Array(PLACEHOLDER_SIGNATURE_BYTES[algorithm]),
    },
    signerCrypto.crypto,
  );
  const der = new Uint8Array(library.rawData);
  let template: LeafTemplate;
  try {
    template = LeafTemplate.fromCertificate(der, algorithm);
  } catch (error) {
    throw internal('pki.leaf_template', `@peculiar/x509 built a leaf of an unexpected shape: ${(error as Error).message}`, error);
  }
  const expected = parseSignedData(der, 'leaf template').tbs;
  if (!Buffer.from(template.encodeTbs(plan)).equals(expected)) {
    throw internal('pki.leaf_template', `the ${profile} leaf template for ${keyType} keys does not reproduce the @peculiar/x509 encoding; refusing to issue from it`);
  }
  return template;
}
