/**
 * Loads one intermediate of `ca.intermediates` for the broker: its certificate file and the
 * key of that label on the online token (a signer: the key never leaves the HSM), checked to
 * belong together, to be constrained to the broker's trust domain and to chain to one of the
 * configured roots. Errors name the label and file.
 */
import { readFileSync } from 'node:fs';
import * as x509 from '@peculiar/x509';
import { BrokerError } from '../core/index.js';
import { HsmSigner, type HsmToken } from '../hsm/index.js';
import { verifyChain } from '../pki/index.js';
import type { CaIntermediate } from './intermediate-rollover.js';

/**
 * @param path the certificate file (absolute)
 * @throws BrokerError invalid when the certificate is unreadable, of another key, trust domain or root
 */
export async function loadIntermediate(token: HsmToken, keyLabel: string, path: string, roots: readonly x509.X509Certificate[], trustDomain: string): Promise<CaIntermediate> {
  let certificate: x509.X509Certificate;
  try {
    certificate = new x509.X509Certificate(readFileSync(path));
  } catch {
    throw invalid('config.intermediate_certificate', `${path} is not a readable PEM or DER certificate`);
  }
  const signer = await HsmSigner.create(token, keyLabel);
  if (!Buffer.from(certificate.publicKey.rawData).equals(signer.publicKey.export({ format: 'der', type: 'spki' }))) {
    throw invalid('config.intermediate_key', `key "${keyLabel}" is not the key of ${path}`);
  }
  if (trustDomainOfIntermediate(certificate) !== trustDomain) {
    throw invalid('config.trust_domain', `the intermediate ${path} is of trust domain "${trustDomainOfIntermediate(certificate)}", not the policy's ${trustDomain}`);
  }
  // A renewed root keeps its predecessor's name: every root of the issuer's name is tried.
  const named = roots.filter((candidate) => candidate.subject === certificate.issuer);
  let failure: unknown = named.length === 0 ? new Error('no configured root has its issuer name') : null;
  for (const root of named) {
    try {
      await verifyChain([certificate, root], roots, certificate.notBefore);
      failure = null;
      break;
    } catch (error) {
      failure = error;
    }
  }
  if (failure !== null) {
    throw invalid('config.intermediate_root', `the intermediate ${path} does not chain to a configured root: ${failure instanceof BrokerError ? failure.publicMessage : (failure as Error).message}`);
  }
  return { keyLabel, certificate, signer };
}

/** The trust domain an intermediate is constrained to: the host of its SPIFFE ID SAN. */
export function trustDomainOfIntermediate(intermediate: x509.X509Certificate): string {
  const san = intermediate.getExtension(x509.SubjectAlternativeNameExtension);
  const uri = san?.names.items.find((name) => name.type === 'url')?.value ?? '';
  return /^spiffe:\/\/([^/]+)/.exec(uri)?.[1] ?? '';
}

function invalid(code: string, message: string): BrokerError {
  return new BrokerError('invalid', { code, publicMessage: message });
}
