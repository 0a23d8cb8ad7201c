/**
 * Builds a certificate chain from a leaf to a trusted root out of candidate intermediates:
 * each step picks a certificate whose subject is the current one's issuer (byte for byte), whose
 * subjectKeyIdentifier matches its authorityKeyIdentifier when both are present, and whose key
 * verifies its signature — so that during a CA rollover, with two intermediates of the same
 * name, the one that really signed is chosen. Tries every candidate (depth first, roots first),
 * up to {@link MAX_CHAIN_LENGTH} certificates.
 *
 * Building checks only who signed what; {@link verifyChain} checks validity, CA flags and
 * constraints.
 */
import type * as x509 from '@peculiar/x509';
import { fieldsOf, findExtension, publicKeyOf, type CertificateFields } from './certificate-fields.js';
import { describeCertificate } from './describe-certificate.js';
import { decodeAuthorityKeyIdentifier, decodeSubjectKeyIdentifier } from './extension-values.js';
import { ExtensionOid } from './oids.js';
import { invalid } from './pki-error.js';
import { verifySignedData } from './signed-data.js';

/** Longest chain built, leaf and root included. */
export const MAX_CHAIN_LENGTH = 8;

interface Candidate {
  readonly certificate: x509.X509Certificate;
  readonly fields: CertificateFields;
  readonly isRoot: boolean;
}

/**
 * Returns `[leaf, …intermediates, root]`, the root being one of `roots`. If the leaf is itself
 * one of `roots`, returns `[leaf]`. Malformed candidates are skipped.
 * @throws BrokerError invalid `pki.chain_malformed` if the leaf cannot be read, `pki.chain` if
 *   no chain reaches a root
 */
export async function buildChain(
  leaf: x509.X509Certificate,
  intermediates: readonly x509.X509Certificate[],
  roots: readonly x509.X509Certificate[],
): Promise<x509.X509Certificate[]> {
  let leafFields: CertificateFields;
  try {
    leafFields = fieldsOf(leaf);
  } catch (error) {
    throw invalid('pki.chain_malformed', `the certificate is malformed: ${(error as Error).message}`, error);
  }
  const candidates = [...roots.map((c) => candidate(c, true)), ...intermediates.map((c) => candidate(c, false))].filter(
    (c): c is Candidate => c !== null,
  );
  const start: Candidate = { certificate: leaf, fields: leafFields, isRoot: candidates.some((c) => c.isRoot && sameDer(c.fields, leafFields)) };
  const path = await extend([start], candidates);
  if (path === null) {
    throw invalid('pki.chain', `no chain leads from ${describeCertificate(leafFields)} to a trusted root`);
  }
  return path.map((c) => c.certificate);
}

async function extend(path: readonly Candidate[], candidates: readonly Candidate[]): Promise<Candidate[] | null> {
  const current = path[path.length - 1] as Candidate;
  if (current.isRoot) return [...path];
  if (path.length >= MAX_CHAIN_LENGTH) return null;
  const authorityKeyId = keyIdOf(current.fields, ExtensionOid.authorityKeyIdentifier);
  for (const next of candidates) {
    if (path.some((c) => sameDer(c.fields, next.fields))) continue;
    if (!Buffer.from(next.fields.subjectRaw).equals(current.fields.issuerRaw)) continue;
    const subjectKeyId = keyIdOf(next.fields, ExtensionOid.subjectKeyIdentifier);
    if (authorityKeyId !== undefined && subjectKeyId !== undefined && !Buffer.from(authorityKeyId).equals(subjectKeyId)) continue;
    let verified = false;
    try {
      verified = await verifySignedData(current.fields.signed, publicKeyOf(next.fields));
    } catch {
      verified = false;
    }
    if (!verified) continue;
    const found = await extend([...path, next], candidates);
    if (found !== null) return found;
  }
  return null;
}

function candidate(certificate: x509.X509Certificate, isRoot: boolean): Candidate | null {
  try {
    return { certificate, fields: fieldsOf(certificate), isRoot };
  } catch {
    return null;
  }
}

function sameDer(a: CertificateFields, b: CertificateFields): boolean {
  return Buffer.from(a.der).equals(b.der);
}

function keyIdOf(fields: CertificateFields, oid: string): Uint8Array | undefined {
  const extension = findExtension(fields, oid);
  if (extension === undefined) return undefined;
  try {
    return oid === ExtensionOid.subjectKeyIdentifier ? decodeSubjectKeyIdentifier(extension.value) : decodeAuthorityKeyIdentifier(extension.value);
  } catch {
    return undefined;
  }
}
