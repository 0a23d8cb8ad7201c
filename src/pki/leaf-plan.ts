/**
 * Everything decided about one leaf certificate before a byte of it is encoded: the checks of
 * {@link issueLeafCertificate} in their order, the granted names, validity, serial and key.
 * Both encoders start from a plan: the fast template path and the @peculiar/x509 reference.
 */
import type { Validity } from './validity.js';
import { formatIpAddress } from './ip-address.js';
import { keyIdentifierOf } from './key-identifier.js';
import type { LeafRequest } from './leaf-certificate.js';
import { leafIssuerFor, type LeafIssuer } from './leaf-issuer.js';
import { LEAF_PROFILES, type LeafProfile } from './leaf-profile.js';
import { checkNameAgainstConstraints } from './name-constraints.js';
import type { EncodableName, GeneralName } from './general-names.js';
import { denied, internal, invalid } from './pki-error.js';
import { spkiOfPublicKey } from './public-key-spki.js';
import type { LeafKeyType } from './public-key-type.js';
import { grantNames } from './san-policy.js';
import { newSerialNumber } from './serial-number.js';
import { parseSpiffeId, type SpiffeId } from './spiffe-id.js';
import { LEAF_VALIDITY_DEFAULTS, MAX_LEAF_TTL_MS, computeValidity } from './validity.js';

/** One leaf, decided: what goes into its certificate. */
export interface LeafPlan {
  readonly issuer: LeafIssuer;
  readonly profile: LeafProfile;
  /** The certified key's type (decides keyUsage). */
  readonly keyType: LeafKeyType;
  readonly spiffeId: SpiffeId;
  /** The SPIFFE ID URI, then the granted DNS names, then the granted IP addresses. */
  readonly subjectAltNames: readonly EncodableName[];
  readonly validity: Validity;
  /** 32 lowercase hex digits (see newSerialNumber). */
  readonly serialNumber: string;
  /** The certified key's SubjectPublicKeyInfo (DER). */
  readonly spki: Uint8Array;
  /** Its key identifier (subjectKeyIdentifier). */
  readonly keyId: Uint8Array;
}

/**
 * Checks a request and decides its leaf. Errors as {@link issueLeafCertificate} documents.
 * @throws BrokerError
 */
export async function planLeaf(request: LeafRequest): Promise<LeafPlan> {
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
  const issuer = await leafIssuerFor(request.issuerSigner, request.issuerCertificate);
  const trustDomains = issuer.trustDomains;
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
  const constraints = issuer.nameConstraints;
  if (constraints !== null) {
    const names: GeneralName[] = [
      { kind: 'uniformResourceIdentifier', text: spiffeId.toString(), content: Buffer.from(spiffeId.toString(), 'latin1') },
      ...granted.dnsNames.map((name): GeneralName => ({ kind: 'dNSName', text: name, content: Buffer.from(name, 'latin1') })),
      ...granted.ipAddresses.map((address): GeneralName => ({ kind: 'iPAddress', text: formatIpAddress(address), content: address })),
    ];
    for (const name of names) {
      const violation = checkNameAgainstConstraints(name, constraints);
      if (violation !== null) throw denied('pki.san_not_allowed', `${violation} of the issuing CA`);
    }
  }
  const validity = computeValidity(request.now, request.ttlMs, policy, issuer.issuer.fields.notAfter);
  const serialNumber = newSerialNumber(request.random);
  const spki = spkiOfPublicKey(request.csr.publicKey);
  return {
    issuer,
    profile: request.profile,
    keyType: request.csr.keyType,
    spiffeId,
    subjectAltNames: [
      { kind: 'uniformResourceIdentifier', text: spiffeId.toString() },
      ...granted.dnsNames.map((text) => ({ kind: 'dNSName' as const, text })),
      ...granted.ipAddresses.map((address) => ({ kind: 'iPAddress' as const, address })),
    ],
    validity,
    serialNumber,
    spki,
    keyId: keyIdentifierOf(spki),
  };
}
