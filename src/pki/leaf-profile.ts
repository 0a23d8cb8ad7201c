/**
 * The two leaf certificate profiles. Roles come from policy (DESIGN.md "Identity"); the
 * profile only decides what the certificate may be used for:
 *
 * - `service`: a workload; TLS server and client (extKeyUsage serverAuth + clientAuth, as the
 *   X509-SVID profile asks of leaves).
 * - `operator`: a person's client certificate for operator RPCs; clientAuth only, so an
 *   operator certificate can never serve TLS as if it were a service.
 *
 * Both: basicConstraints cA FALSE (critical), keyUsage digitalSignature (+ keyEncipherment for
 * RSA keys, for TLS 1.2 RSA key exchange), critical.
 */
import { ExtendedKeyUsageOid } from './oids.js';
import type { KeyUsageName } from './key-usage.js';
import type { LeafKeyType } from './public-key-type.js';

/** A leaf profile name. */
export type LeafProfile = 'service' | 'operator';

/** Every leaf profile, for tables and validation. */
export const LEAF_PROFILES: readonly LeafProfile[] = Object.freeze(['service', 'operator']);

/** The extended key usage purposes (OIDs) of a profile. */
export function extendedKeyUsagesOf(profile: LeafProfile): readonly string[] {
  return profile === 'service' ? [ExtendedKeyUsageOid.serverAuth, ExtendedKeyUsageOid.clientAuth] : [ExtendedKeyUsageOid.clientAuth];
}

/** The keyUsage bits of a leaf with a key of `keyType`. */
export function leafKeyUsagesOf(keyType: LeafKeyType): readonly KeyUsageName[] {
  return keyType === 'RSA' ? ['digitalSignature', 'keyEncipherment'] : ['digitalSignature'];
}
