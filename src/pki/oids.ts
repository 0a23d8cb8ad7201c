/** Object identifiers credbroker reads or writes, with the names its error messages use. */

/** Certificate and CRL extensions (RFC 5280 §4.2, §5.2). */
export const ExtensionOid = Object.freeze({
  subjectKeyIdentifier: '2.5.29.14',
  keyUsage: '2.5.29.15',
  subjectAltName: '2.5.29.17',
  issuerAltName: '2.5.29.18',
  basicConstraints: '2.5.29.19',
  crlNumber: '2.5.29.20',
  crlReason: '2.5.29.21',
  nameConstraints: '2.5.29.30',
  crlDistributionPoints: '2.5.29.31',
  certificatePolicies: '2.5.29.32',
  policyMappings: '2.5.29.33',
  authorityKeyIdentifier: '2.5.29.35',
  policyConstraints: '2.5.29.36',
  extKeyUsage: '2.5.29.37',
  inhibitAnyPolicy: '2.5.29.54',
  authorityInfoAccess: '1.3.6.1.5.5.7.1.1',
});

/** Extended key usage purposes (RFC 5280 §4.2.1.12). */
export const ExtendedKeyUsageOid = Object.freeze({
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  codeSigning: '1.3.6.1.5.5.7.3.3',
  emailProtection: '1.3.6.1.5.5.7.3.4',
  timeStamping: '1.3.6.1.5.5.7.3.8',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
  anyExtendedKeyUsage: '2.5.29.37.0',
});

/** PKCS#9 attributes that may appear in a CSR (RFC 2986, RFC 2985). */
export const CsrAttributeOid = Object.freeze({
  extensionRequest: '1.2.840.113549.1.9.14',
  challengePassword: '1.2.840.113549.1.9.7',
  unstructuredName: '1.2.840.113549.1.9.2',
});

/** Signature algorithms (RFC 5758, RFC 4055, RFC 8410) and their weak relatives. */
export const SignatureAlgorithmOid = Object.freeze({
  ecdsaWithSha1: '1.2.840.10045.4.1',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  ecdsaWithSha384: '1.2.840.10045.4.3.3',
  ecdsaWithSha512: '1.2.840.10045.4.3.4',
  md5WithRsa: '1.2.840.113549.1.1.4',
  sha1WithRsa: '1.2.840.113549.1.1.5',
  rsassaPss: '1.2.840.113549.1.1.10',
  sha256WithRsa: '1.2.840.113549.1.1.11',
  sha384WithRsa: '1.2.840.113549.1.1.12',
  sha512WithRsa: '1.2.840.113549.1.1.13',
  ed25519: '1.3.101.112',
  ed448: '1.3.101.113',
});

const NAMES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(
    [ExtensionOid, ExtendedKeyUsageOid, CsrAttributeOid, SignatureAlgorithmOid].flatMap((table) =>
      Object.entries(table).map(([name, oid]) => [oid, name]),
    ),
  ),
);

/** `2.5.29.30 (nameConstraints)` for known OIDs, the bare OID otherwise: for error messages. */
export function describeOid(oid: string): string {
  const name = NAMES[oid];
  return name === undefined ? oid : `${oid} (${name})`;
}
