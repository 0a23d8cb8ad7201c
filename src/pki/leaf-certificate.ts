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
import type * as x509 from '@peculiar/x509';
import type { RandomSource, Signer } from '../core/index.js';
import type { CheckedCsr } from './check-csr.js';
import type { LeafProfile } from './leaf-profile.js';
import { planLeaf } from './leaf-plan.js';
import { internal } from './pki-error.js';
import { PrebuiltCertificate } from './prebuilt-certificate.js';
import type { SpiffeId } from './spiffe-id.js';
import type { ValidityPolicy } from './validity.js';

/** What a leaf certificate needs. */
export interface LeafRequest {
  /**
   * The intermediate's key (in the HSM). Pass the same object every time: the checked issuer
   * and its templates are kept per (issuerSigner, issuerCertificate) pair of objects.
   */
  readonly issuerSigner: Signer;
  /** The intermediate's certificate; its name constraints name the trust domain. Same object every time, as issuerSigner. */
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
 *
 * The hot path (DESIGN.md "Performance shape"): the checks and decisions of {@link planLeaf},
 * then the profile's precomputed DER ({@link LeafTemplate}, built once per issuer, profile,
 * key type and signature algorithm with @peculiar/x509) filled with serial, validity, key,
 * key identifier and SANs, one signature by the Signer, and a {@link PrebuiltCertificate} that
 * parses nothing unless asked. The result is byte for byte what @peculiar/x509 builds from the
 * same inputs (see leaf-certificate-reference.ts and its differential test).
 * @throws BrokerError
 *   - invalid `pki.profile` (unknown profile), `pki.spiffe_id` (malformed, or no path),
 *     `pki.dns_name` / `pki.ip_address` (malformed requested SAN), `pki.ttl` (≤ 0 or above the cap);
 *   - denied `pki.trust_domain_mismatch` (the SPIFFE ID is outside the issuer's trust domain),
 *     `pki.san_not_allowed` (naming a requested DNS/IP SAN policy does not allow, a CSR URI SAN
 *     other than the authorized SPIFFE ID, or a name outside the issuer's name constraints);
 *   - conflict `pki.issuer_expired`;
 *   - internal `pki.issuer_*`, `pki.validity_policy`, `pki.san_policy` (configuration errors),
 *     `pki.leaf_template` (the library's encoding could not be reproduced), `pki.signature`
 *     (the Signer returned a signature of the wrong size);
 *   - whatever the Signer throws (e.g. unavailable while the HSM reconnects)
 */
export async function issueLeafCertificate(request: LeafRequest): Promise<x509.X509Certificate> {
  const plan = await planLeaf(request);
  const template = await plan.issuer.templateFor(plan);
  const tbs = template.encodeTbs(plan);
  const signature = await request.issuerSigner.sign(tbs);
  let der: Uint8Array;
  try {
    der = template.encodeCertificate(tbs, signature);
  } catch (error) {
    throw internal('pki.signature', `${request.issuerSigner.description} returned a ${signature.length}-byte ${template.algorithm} signature: ${(error as Error).message}`, error);
  }
  return new PrebuiltCertificate(der, { serialNumber: plan.serialNumber, notBefore: plan.validity.notBefore, notAfter: plan.validity.notAfter, spki: plan.spki });
}
