/**
 * Which DNS and IP SANs a leaf gets: those requested (in the CSR or by the caller) that the
 * identity's policy allows — each refused one named, never silently dropped.
 */
import { dnsNameProblem, dnsPatternAllows } from './dns-name.js';
import { formatIpAddress, ipInRange, parseIpAddress, parseIpRange, type IpRange } from './ip-address.js';
import { denied, internal, invalid } from './pki-error.js';

/** The SANs granted besides the SPIFFE ID, normalized and deduplicated. */
export interface GrantedNames {
  /** Lowercase DNS names. */
  readonly dnsNames: readonly string[];
  /** 4- or 16-byte addresses. */
  readonly ipAddresses: readonly Uint8Array[];
}

/**
 * Grants the requested DNS names and IP addresses that policy allows.
 * @param requestedDnsNames from the CSR and the caller, any case
 * @param requestedIpAddresses from the CSR and the caller, any valid text form
 * @param allowedDnsNames policy: exact names or `*.suffix` (one label in front of suffix)
 * @param allowedIpAddresses policy: addresses or CIDR blocks (`10.0.0.0/8`)
 * @throws BrokerError invalid `pki.dns_name` / `pki.ip_address` for a malformed request;
 *   denied `pki.san_not_allowed` naming the first requested name policy does not allow;
 *   internal `pki.san_policy` for a malformed policy entry
 */
export function grantNames(
  requestedDnsNames: readonly string[],
  requestedIpAddresses: readonly string[],
  allowedDnsNames: readonly string[],
  allowedIpAddresses: readonly string[],
): GrantedNames {
  const dnsNames: string[] = [];
  for (const requested of requestedDnsNames) {
    const problem = dnsNameProblem(requested);
    if (problem !== null) throw invalid('pki.dns_name', `DNS name "${requested.slice(0, 260)}" ${problem}`);
    const name = requested.toLowerCase();
    if (dnsNames.includes(name)) continue;
    if (!allowedDnsNames.some((pattern) => dnsPatternAllows(pattern, name))) {
      throw denied('pki.san_not_allowed', `DNS SAN ${name} is not allowed for this identity by policy`);
    }
    dnsNames.push(name);
  }
  const ranges = allowedIpAddresses.map((text): IpRange => {
    const range = parseIpRange(text);
    if (range === null) throw internal('pki.san_policy', `policy lists "${text}" as an allowed IP address, which is neither an address nor a CIDR block`);
    return range;
  });
  const ipAddresses: Uint8Array[] = [];
  const seen = new Set<string>();
  for (const requested of requestedIpAddresses) {
    const address = parseIpAddress(requested);
    if (address === null) throw invalid('pki.ip_address', `"${requested.slice(0, 60)}" is not an IP address`);
    const canonical = formatIpAddress(address);
    if (seen.has(canonical)) continue;
    if (!ranges.some((range) => ipInRange(address, range))) {
      throw denied('pki.san_not_allowed', `IP SAN ${canonical} is not allowed for this identity by policy`);
    }
    seen.add(canonical);
    ipAddresses.push(address);
  }
  return { dnsNames, ipAddresses };
}
