/**
 * The reference leaf builder, for tests only: the same plan as {@link issueLeafCertificate},
 * built and signed entirely by @peculiar/x509 (≈ 2.5 ms a leaf, DESIGN.md "Performance
 * shape"). The differential unit test proves the fast path byte-identical to it. Not exported
 * from the package index: nothing in the broker should call it.
 */
import * as x509 from '@peculiar/x509';
import type { LeafRequest } from './leaf-certificate.js';
import { planLeaf } from './leaf-plan.js';
import { leafGeneratorParams } from './leaf-template.js';

/**
 * Issues a leaf exactly as {@link issueLeafCertificate} does (same checks, same errors, same
 * random draws), building and signing it with @peculiar/x509.
 * @throws BrokerError as issueLeafCertificate
 */
export async function issueLeafCertificateWithLibrary(request: LeafRequest): Promise<x509.X509Certificate> {
  const plan = await planLeaf(request);
  const signerCrypto = plan.issuer.issuer.signerCrypto;
  return x509.X509CertificateGenerator.create({ ...leafGeneratorParams(plan), signingKey: signerCrypto.signingKey }, signerCrypto.crypto);
}
