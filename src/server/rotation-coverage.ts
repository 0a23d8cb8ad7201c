/**
 * Rotation coverage (issue 6): of the identities (distinct SPIFFE IDs) that hold a live
 * certificate, the share whose agent keeps a Watch stream open on one of those live
 * certificates, so that a forced rotation reaches it in seconds instead of at its next renewal.
 * Per certificate profile: operators hold certificates for grpcurl and never watch, so one
 * figure over both would hide what the services do. The broker's own server certificate
 * (profile `server`) has no agent and is left out, as ForceRotate leaves it out.
 */
import type { CertificateProfileName, CertificateRecord } from '../store/index.js';

/** Identities with a live certificate, and those of them watching. */
export interface CoverageFigures {
  readonly identities: number;
  readonly watching: number;
}

/** The profiles coverage is reported for. */
export type CoverageProfile = Exclude<CertificateProfileName, 'server'>;

/**
 * Coverage per profile of the `live` certificates (valid now, not revoked). An identity counts
 * as watching when a stream is open on any of its live serials. Profiles without a live
 * certificate are absent.
 * @param isWatched true when a Watch stream is open on the serial (RotationHub.isConnected)
 */
export function rotationCoverage(
  live: Iterable<Pick<CertificateRecord, 'serial' | 'spiffeId' | 'profile'>>,
  isWatched: (serial: string) => boolean,
): Map<CoverageProfile, CoverageFigures> {
  const identities = new Map<CoverageProfile, Map<string, boolean>>();
  for (const certificate of live) {
    if (certificate.profile === 'server') continue;
    let byId = identities.get(certificate.profile);
    if (byId === undefined) {
      byId = new Map();
      identities.set(certificate.profile, byId);
    }
    if (byId.get(certificate.spiffeId) !== true) byId.set(certificate.spiffeId, isWatched(certificate.serial));
  }
  const figures = new Map<CoverageProfile, CoverageFigures>();
  for (const [profile, byId] of identities) {
    let watching = 0;
    for (const watched of byId.values()) if (watched) watching++;
    figures.set(profile, { identities: byId.size, watching });
  }
  return figures;
}

/** watching ÷ identities, from 0 to 1; null when there is no identity to cover. */
export function coverageRatio(figures: CoverageFigures): number | null {
  return figures.identities === 0 ? null : figures.watching / figures.identities;
}
