/**
 * Issues leaf certificates (X.509 SVIDs) for services and operators.
 *
 * The identity comes from the caller's authorization (`spiffeId`), never from the CSR: the CSR
 * contributes its key (already proven by checkCsr) and, at most, requests for SANs, each of
 * which must be allowed. Profile:
 * - subject: empty. The identity is the URI SAN alone; a CN such as the path's last segment
 *   would be read as a host name by verifiers that still fall back to the CN, granting a name
 *   no policy allowed. With an empty subject the SAN is critical (RFC 5280 §4.1.2.6, §4.2.1.6);
 * - subjectAltName: exactly one URI, the SPIFFE ID, then the DNS names and IP addresses policy
 *   allows;
 * - basicConstraints cA FALSE, keyUsage and extKeyUsage from {@link LeafProfile};
 * - subjectKeyIdentifier of the key; authorityKeyIdentifier = the issuer's subjectKeyIdentifier;
 * - validity from {@link computeValidity}: 1 h by default, at most 24 h, never beyond the
 *   issuer's notAfter; a 16-byte random serial.
 * No CRL distribution point or AIA: relying parties get the CRL and trust bundle from the broker.
 */
import * as x509 from '@peculiar/x509';
import { spkiOf, type RandomSource, type Signer } from '../core/index.js';
import type { CheckedCsr } from './check-csr.js';
import { findExtension, type CertificateFields } from './certificate-fields.js';
import { decodeGeneralNames, type GeneralName } from './general-names.js';
import { formatIpAddress } from './ip-address.js';
import { prepareIssuer } from './issuer.js';
import { keyIdentifierOf } from './key-identifier.js';
import { LEAF_PROFILES, extendedKeyUsagesOf, leafKeyUsagesOf, type LeafProfile } from './leaf-profile.js';
import { checkNameAgainstConstraints, decodeNameConstraints, type NameConstraints } from './name-constraints.js';
import { ExtensionOid } from './oids.js';
import { denied, internal, invalid } from './pki-error.js';
import {
  authorityKeyIdentifierExtension,
  basicConstraintsExtension,
  extendedKeyUsageExtension,
  keyUsageExtension,
  subjectAltNameExtension,
  subjectKeyIdentifierExtension,
} from './profile-extensions.js';
import { grantNames } from './san-policy.js';
import { newSerialNumber } from './serial-number.js';
import { parseSpiffeId, type SpiffeId } from './spiffe-id.js';
import { LEAF_VALIDITY_DEFAULTS, MAX_LEAF_TTL_MS, computeValidity, type ValidityPolicy } from './validity.js';

/** What a leaf certificate needs. */
export interface LeafRequest {
  /** The intermediate's key (in the HSM). */
  readonly issuerSigner: Signer;
  /** The intermediate's certificate; its name constraints name the trust domain. */
  readonly issuerCertificate: x509.X509Certificate;
  /** The checked CSR: its key is certified. */
  readonly csr: CheckedCsr;
  /** The identity the caller is authorized for (from the join token or peer certificate). */
  readonly spiffeId: SpiffeId;
  readonly profile: LeafProfile;
  /** DNS SANs the caller asks for besides those in the CSR (default none). */
  readonly dnsNames?: readonly string[];
  /** IP SANs the caller asks for besides those in the CSR (default none). */
  readonly ipAddresses?: readonly string[];
  /** Policy: exact DNS names or `*.suffix` patterns this identity may have (default none). */
  readonly allowedDnsNames?: readonly string[];
  /** Policy: IP addresses or CIDR blocks this identity may have (default none). */
  readonly allowedIpAddresses?: readonly string[];
  /** Requested TTL in ms (default: the policy's default). */
  readonly ttlMs?: number;
  /** Default {@link LEAF_VALIDITY_DEFAULTS}; its maxTtlMs may not exceed {@link MAX_LEAF_TTL_MS}. */
  readonly validityPolicy?: ValidityPolicy;
  /** The current instant (from a Clock). */
  readonly now: Date;
  /** For the serial number. */
  readonly random: RandomSource;
}

/**
 * Issues a leaf certificate, signed through `request.issuerSigner`.
 * @throws BrokerError
 *   - invalid `pki.profile` (unknown profile), `pki.spiffe_id` (malformed, or no path),
 *     `pki.dns_name` / `pki.ip_address` (malformed requested SAN), `pki.ttl` (≤ 0 or above the cap);
 *   - denied `pki.trust_domain_mismatch` (the SPIFFE ID is outside the issuer's trust domain),
 *     `pki.san_not_allowed` (naming a requested DNS/IP SAN policy does not allow, a CSR URI SAN
 *     other than the authorized SPIFFE ID, or a name outside the issuer's name constraints);
 *   - conflict `pki.issuer_expired`;
 *   - internal `pki.issuer_*`, `pki.validity_policy`, `pki.san_policy` (configuration errors)
 */
export async function issueLeafCertificate(request: LeafRequest): Promise<x509.X509Certificate> {
  const profile: unknown = request.profile;
  if (!LEAF_PROFILES.includes(request.profile)) {
    throw invalid('pki.profile', `unknown certificate profile "${String(profile)}"; use ${LEAF_PROFILES.join(' or ')}`);
  }
  const spiffeId = parseSpiffeId(request.spiffeId.toString());
  if (spiffeId.path === '') {
    throw invalid('pki.spiffe_id', `SPIFFE ID "${spiffeId.toString()}" has no path: a leaf certificate names a workload, not the trust domain`);
  }
  const policy = request.validityPolicy ?? LEAF_VALIDITY_DEFAULTS;
  if (policy.maxTtlMs > MAX_LEAF_TTL_MS) {
    throw internal('pki.validity_policy', `validity policy maxTtlMs ${policy.maxTtlMs} exceeds the hard cap of ${MAX_LEAF_TTL_MS} ms`);
  }
  const issuer = await prepareIssuer(request.issuerSigner, request.issuerCertificate, 'certificate');
  const constraints = nameConstraintsOf(issuer.fields);
  const trustDomains = trustDomainsOf(issuer.fields, constraints);
  if (trustDomains.length === 0) {
    throw internal('pki.issuer_trust_domain', `the issuer certificate ${request.issuerCertificate.subject} names no SPIFFE trust domain (no URI name constraint or SPIFFE ID)`);
  }
  if (!trustDomains.includes(spiffeId.trustDomain)) {
    throw denied('pki.trust_domain_mismatch', `SPIFFE ID ${spiffeId.toString()} is outside the trust domain this CA issues for (${trustDomains.join(', ')})`);
  }
  for (const uri of request.csr.requestedUris) {
    if (uri !== spiffeId.toString()) {
      throw denied('pki.san_not_allowed', `the CSR asks for URI SAN ${uri}, but the caller is authorized for ${spiffeId.toString()} only`);
    }
  }
  const granted = grantNames(
    [...request.csr.requestedDnsNames, ...(request.dnsNames ?? [])],
    [...request.csr.requestedIpAddresses, ...(request.ipAddresses ?? [])],
    request.allowedDnsNames ?? [],
    request.allowedIpAddresses ?? [],
  );
  const names: GeneralName[] = [
    { kind: 'uniformResourceIdentifier', text: spiffeId.toString(), content: Buffer.from(spiffeId.toString(), 'latin1') },
    ...granted.dnsNames.map((name): GeneralName => ({ kind: 'dNSName', text: name, content: Buffer.from(name, 'latin1') })),
    ...granted.ipAddresses.map((address): GeneralName => ({ kind: 'iPAddress', text: formatIpAddress(address), content: address })),
  ];
  if (constraints !== null) {
    for (const name of names) {
      const violation = checkNameAgainstConstraints(name, constraints);
      if (violation !== null) throw denied('pki.san_not_allowed', `${violation} of the issuing CA`);
    }
  }
  const validity = computeValidity(request.now, request.ttlMs, policy, issuer.fields.notAfter);
  return x509.X509CertificateGenerator.create(
    {
      serialNumber: newSerialNumber(request.random),
      issuer: issuer.name,
      notBefore: validity.notBefore,
      notAfter: validity.notAfter,
      publicKey: spkiOf(request.csr.publicKey),
      signingKey: issuer.signerCrypto.signingKey,
      signingAlgorithm: issuer.signerCrypto.signingAlgorithm,
      extensions: [
        basicConstraintsExtension(false),
        keyUsageExtension(leafKeyUsagesOf(request.csr.keyType)),
        extendedKeyUsageExtension(extendedKeyUsagesOf(request.profile)),
        subjectKeyIdentifierExtension(keyIdentifierOf(request.csr.publicKey)),
        authorityKeyIdentifierExtension(issuer.keyId),
        subjectAltNameExtension(
          [
            { kind: 'uniformResourceIdentifier', text: spiffeId.toString() },
            ...granted.dnsNames.map((text) => ({ kind: 'dNSName' as const, text })),
            ...granted.ipAddresses.map((address) => ({ kind: 'iPAddress' as const, address })),
          ],
          true,
        ),
      ],
    },
    issuer.signerCrypto.crypto,
  );
}

function nameConstraintsOf(fields: CertificateFields): NameConstraints | null {
  const extension = findExtension(fields, ExtensionOid.nameConstraints);
  if (extension === undefined) return null;
  try {
    return decodeNameConstraints(extension.value);
  } catch (error) {
    throw internal('pki.issuer_certificate', `the issuer certificate has malformed name constraints: ${(error as Error).message}`, error);
  }
}

/**
 * The trust domains an issuer serves: its permitted URI name-constraint hosts, or else the
 * trust domain of its own SPIFFE ID (a URI SAN without path).
 */
function trustDomainsOf(fields: CertificateFields, constraints: NameConstraints | null): string[] {
  const fromConstraints = (constraints?.permitted ?? [])
    .filter((name) => name.kind === 'uniformResourceIdentifier' && !name.text.startsWith('.'))
    .map((name) => name.text.toLowerCase());
  if (fromConstraints.length > 0) return fromConstraints;
  const san = findExtension(fields, ExtensionOid.subjectAltName);
  if (san === undefined) return [];
  try {
    return decodeGeneralNames(san.value, 'issuer subjectAltName').flatMap((name) => {
      if (name.kind !== 'uniformResourceIdentifier') return [];
      try {
        const id = parseSpiffeId(name.text);
        return id.path === '' ? [id.trustDomain] : [];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}
