/**
 * The intermediate (online issuing) CA certificate, signed by the root in a key ceremony.
 *
 * Profile:
 * - basicConstraints cA TRUE, pathLenConstraint 0 (it issues leaves only), critical;
 * - keyUsage keyCertSign | cRLSign, critical. No digitalSignature: the key signs certificates
 *   and CRLs only (no OCSP responses, no TLS), and the X509-SVID profile reserves
 *   digitalSignature for leaves;
 * - nameConstraints, critical, permitting the URI host `<trustDomain>` — every SPIFFE ID below
 *   it must be `spiffe://<trustDomain>/…` (RFC 5280 §4.2.1.10 applies URI constraints to the
 *   host; `spiffe://<trustDomain>` written literally would match nothing in OpenSSL or Go).
 *   With `permittedDnsDomains`, DNS SANs below it are confined to those domains too; without,
 *   DNS and IP SANs are left to issuance policy (a constraint on URIs does not touch them);
 * - subjectAltName URI `spiffe://<trustDomain>` (X509-SVID §3.2: a signing certificate SHOULD
 *   be an SVID of its trust domain, without a path), not critical (the subject is not empty);
 * - subjectKeyIdentifier, authorityKeyIdentifier = the root's subjectKeyIdentifier.
 * No extended key usage (X509-SVID §4.4 warns that verifiers treat it inconsistently on CAs).
 */
import type { KeyObject } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { formatDurationMs, keyTypeOf, spkiOf, type RandomSource, type Signer } from '../core/index.js';
import { parseDistinguishedName } from './distinguished-name.js';
import { describeKey } from './public-key-type.js';
import { dnsNameProblem } from './dns-name.js';
import type { EncodableName } from './general-names.js';
import { prepareIssuer } from './issuer.js';
import { keyIdentifierOf } from './key-identifier.js';
import { internal, invalid } from './pki-error.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  keyUsageExtension,
  nameConstraintsExtension,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
} from './profile-extensions.js';
import { newSerialNumber } from './serial-number.js';
import { parseTrustDomain } from './spiffe-id.js';
import { checkCaValidity } from './validity.js';

/** What an intermediate certificate needs. */
export interface IntermediateCertificateRequest {
  /** The root key (in the HSM). */
  readonly issuerSigner: Signer;
  /** The root certificate (its subject becomes the issuer; its key must be issuerSigner's). */
  readonly issuerCertificate: x509.X509Certificate;
  /** The intermediate's public key (its private half stays in the online HSM token). */
  readonly publicKey: KeyObject;
  /** RFC 4514 subject, e.g. `CN=credbroker intermediate 2026,O=Example`; must not be empty. */
  readonly subject: string;
  /** The SPIFFE trust domain the intermediate may issue for, e.g. `anonymizer.prod`. */
  readonly trustDomain: string;
  readonly notBefore: Date;
  /** Must not be after the issuer's notAfter. */
  readonly notAfter: Date;
  /** For the serial number. */
  readonly random: RandomSource;
  /**
   * Optional DNS domains (RFC 5280 dNSName subtrees: the domain and every name under it) that
   * DNS SANs of certificates below must fall in. Default: none, DNS SANs are not constrained.
   */
  readonly permittedDnsDomains?: readonly string[];
}

/** pathLenConstraint of an intermediate: leaves only. */
export const INTERMEDIATE_PATH_LENGTH = 0;

/**
 * Creates the intermediate certificate, signed through `request.issuerSigner`.
 * @throws BrokerError invalid `pki.subject`, `pki.trust_domain`, `pki.key_type` (not P-256,
 *   P-384, RSA-3072 or Ed25519, or a private key), `pki.dns_name` (a bad permitted domain) or
 *   `pki.validity` (notAfter not after notBefore, or after the issuer's notAfter);
 *   internal `pki.issuer_*` when the issuer certificate and signer do not fit (see
 *   {@link prepareIssuer}) or the issuer's pathLenConstraint forbids another CA
 */
export async function createIntermediateCertificate(request: IntermediateCertificateRequest): Promise<x509.X509Certificate> {
  const name = parseDistinguishedName(request.subject, 'intermediate subject');
  const trustDomain = parseTrustDomain(request.trustDomain);
  if (request.publicKey.type !== 'public') {
    throw invalid('pki.key_type', 'the intermediate certificate takes the public key only; the private key stays in the HSM');
  }
  const keyType = keyTypeOf(request.publicKey);
  if (keyType === null) {
    throw invalid('pki.key_type', `the intermediate key is ${describeKey(request.publicKey)}; use P-256, P-384, RSA-3072 or Ed25519`);
  }
  const dnsDomains = (request.permittedDnsDomains ?? []).map((domain) => {
    const problem = dnsNameProblem(domain);
    if (problem !== null) throw invalid('pki.dns_name', `permitted DNS domain "${domain.slice(0, 260)}" ${problem}`);
    return domain.toLowerCase();
  });
  checkCaValidity(request.notBefore, request.notAfter);
  const issuer = await prepareIssuer(request.issuerSigner, request.issuerCertificate, 'certificate');
  if (Math.floor(request.notAfter.getTime() / 1000) > issuer.fields.notAfter.getTime() / 1000) {
    const excessMs = request.notAfter.getTime() - issuer.fields.notAfter.getTime();
    throw invalid(
      'pki.validity',
      `the intermediate's notAfter (${request.notAfter.toISOString()}) is ${formatDurationMs(Math.ceil(excessMs / 1000) * 1000)} after its issuer's (${issuer.fields.notAfter.toISOString()})`,
    );
  }
  const issuerPathLength = issuer.basicConstraints.pathLength;
  if (issuerPathLength !== undefined && issuerPathLength < 1) {
    throw internal('pki.issuer_path_length', `the issuer certificate ${request.issuerCertificate.subject} has pathLenConstraint ${issuerPathLength}: it cannot sign a CA`);
  }
  const permitted: EncodableName[] = [
    { kind: 'uniformResourceIdentifier', text: trustDomain },
    ...dnsDomains.map((domain): EncodableName => ({ kind: 'dNSName', text: domain })),
  ];
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: newSerialNumber(request.random),
      subject: name,
      issuer: issuer.name,
      notBefore: request.notBefore,
      notAfter: request.notAfter,
      publicKey: spkiOf(request.publicKey),
      signingKey: issuer.signerCrypto.signingKey,
      signingAlgorithm: issuer.signerCrypto.signingAlgorithm,
      extensions: [
        basicConstraintsExtension(true, INTERMEDIATE_PATH_LENGTH),
        keyUsageExtension(['keyCertSign', 'cRLSign']),
        nameConstraintsExtension(permitted),
        subjectAltNameExtension([{ kind: 'uniformResourceIdentifier', text: `spiffe://${trustDomain}` }], false),
        subjectKeyIdentifierExtension(keyIdentifierOf(request.publicKey)),
        authorityKeyIdentifierExtension(issuer.keyId),
      ],
    },
    issuer.signerCrypto.crypto,
  );
}
