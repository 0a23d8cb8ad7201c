/**
 * An intermediate as the leaf builder needs it, prepared once per (issuer certificate, Signer)
 * and kept for as long as both objects live: the checked issuer (see prepareIssuer), its name
 * constraints and trust domains, and one {@link LeafTemplate} per (profile, leaf key type) —
 * the signature algorithm is the Signer's. Per request only what differs between leaves is
 * computed (DESIGN.md "Performance shape").
 *
 * Failures are not kept: a misconfigured issuer fails every request the same way, and a fixed
 * configuration works at the next request.
 */
import type * as x509 from '@peculiar/x509';
import type { Signer } from '../core/index.js';
import { findExtension, type CertificateFields } from './certificate-fields.js';
import { decodeGeneralNames } from './general-names.js';
import { prepareIssuer, type Issuer } from './issuer.js';
import type { LeafPlan } from './leaf-plan.js';
import type { LeafProfile } from './leaf-profile.js';
import { buildLeafTemplate, type LeafTemplate } from './leaf-template.js';
import { decodeNameConstraints, type NameConstraints } from './name-constraints.js';
import { ExtensionOid } from './oids.js';
import { internal } from './pki-error.js';
import type { LeafKeyType } from './public-key-type.js';
import { parseSpiffeId } from './spiffe-id.js';

/** A CA certificate and its Signer, checked and ready to issue leaves. */
export class LeafIssuer {
  readonly issuer: Issuer;
  /** The issuer's name constraints, or null when it has none. */
  readonly nameConstraints: NameConstraints | null;
  /** Trust domains it issues for (lowercase); empty means misconfigured. */
  readonly trustDomains: readonly string[];
  readonly #templates = new Map<string, Promise<LeafTemplate>>();

  private constructor(issuer: Issuer, nameConstraints: NameConstraints | null, trustDomains: readonly string[]) {
    this.issuer = issuer;
    this.nameConstraints = nameConstraints;
    this.trustDomains = trustDomains;
  }

  /**
   * Checks the issuer (see prepareIssuer) and reads its constraints.
   * @throws BrokerError internal `pki.issuer_*` (configuration errors)
   */
  static async prepare(signer: Signer, certificate: x509.X509Certificate): Promise<LeafIssuer> {
    const issuer = await prepareIssuer(signer, certificate, 'certificate');
    const constraints = nameConstraintsOf(issuer.fields);
    return new LeafIssuer(issuer, constraints, Object.freeze(trustDomainsOf(issuer.fields, constraints)));
  }

  /**
   * The template for leaves like `plan` (its profile and key type), built with @peculiar/x509
   * the first time and shared by every later request.
   * @throws BrokerError internal `pki.leaf_template` if the library's encoding cannot be reproduced
   */
  templateFor(plan: LeafPlan): Promise<LeafTemplate> {
    const key = templateKey(plan.profile, plan.keyType);
    let template = this.#templates.get(key);
    if (template === undefined) {
      template = buildLeafTemplate(this, plan.profile, plan.keyType);
      this.#templates.set(key, template);
      template.catch(() => this.#templates.delete(key));
    }
    return template;
  }
}

const issuers = new WeakMap<x509.X509Certificate, WeakMap<Signer, Promise<LeafIssuer>>>();

/**
 * The LeafIssuer of `certificate` signing through `signer`, prepared once per pair of objects.
 * @throws BrokerError internal `pki.issuer_*` (configuration errors)
 */
export function leafIssuerFor(signer: Signer, certificate: x509.X509Certificate): Promise<LeafIssuer> {
  let bySigner = issuers.get(certificate);
  if (bySigner === undefined) {
    bySigner = new WeakMap();
    issuers.set(certificate, bySigner);
  }
  let prepared = bySigner.get(signer);
  if (prepared === undefined) {
    prepared = LeafIssuer.prepare(signer, certificate);
    bySigner.set(signer, prepared);
    const cache = bySigner;
    prepared.catch(() => cache.delete(signer));
  }
  return prepared;
}

function templateKey(profile: LeafProfile, keyType: LeafKeyType): string {
  return `${profile}/${keyType}`;
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
