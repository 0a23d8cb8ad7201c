/**
 * Certificate revocation lists (RFC 5280 §5): v2, signed by the CA that issued the revoked
 * certificates, with the authorityKeyIdentifier and cRLNumber extensions and a reasonCode per
 * entry — omitted for `unspecified`, as RFC 5280 §5.3.1 recommends.
 *
 * The to-be-signed list is encoded here rather than by @peculiar/x509, whose generator writes an
 * empty `crlEntryExtensions` SEQUENCE for an entry without extensions (RFC 5280 requires
 * `SIZE (1..MAX)`: the field must then be absent) and re-encodes the issuer name. It is signed
 * through {@link SignerCrypto}, like every certificate, and returned as an @peculiar/x509 X509Crl
 * whose PEM has the standard label (see {@link StandardPemCrl}).
 */
import * as x509 from '@peculiar/x509';
import type { RevocationReason, Signer } from '../core/index.js';
import { derBitString, derContext, derInteger, derOctetString, derOid, derSequence, derTime } from './der-writer.js';
import { prepareIssuer } from './issuer.js';
import { ExtensionOid } from './oids.js';
import { invalid } from './pki-error.js';
import { authorityKeyIdentifierExtension, crlNumberExtension } from './profile-extensions.js';
import { algorithmIdentifierOf, x509SignatureOf } from './signed-data.js';

/** Revocation reasons credbroker records (defined in src/core, shared with the store). */
export type { RevocationReason } from '../core/index.js';

/** The CRLReason code of each reason (RFC 5280 §5.3.1). */
export const REVOCATION_REASON_CODES: Readonly<Record<RevocationReason, x509.X509CrlReason>> = Object.freeze({
  unspecified: x509.X509CrlReason.unspecified,
  keyCompromise: x509.X509CrlReason.keyCompromise,
  caCompromise: x509.X509CrlReason.cACompromise,
  affiliationChanged: x509.X509CrlReason.affiliationChanged,
  superseded: x509.X509CrlReason.superseded,
  cessationOfOperation: x509.X509CrlReason.cessationOfOperation,
  certificateHold: x509.X509CrlReason.certificateHold,
  privilegeWithdrawn: x509.X509CrlReason.privilegeWithdrawn,
});

/** One revoked certificate. */
export interface CrlEntry {
  /** Serial number in hex (as {@link newSerialNumber} makes it); 1–20 bytes. */
  readonly serialNumber: string;
  readonly revokedAt: Date;
  readonly reason: RevocationReason;
}

/** What a CRL needs. */
export interface CrlRequest {
  /** The key of the CA that issued the revoked certificates. */
  readonly issuerSigner: Signer;
  /** That CA's certificate (needs keyUsage cRLSign). */
  readonly issuerCertificate: x509.X509Certificate;
  /** The CRL number: > 0, at most 20 bytes; the caller keeps it strictly increasing. */
  readonly crlNumber: bigint;
  readonly thisUpdate: Date;
  /** When the next CRL will be out at the latest; after thisUpdate. */
  readonly nextUpdate: Date;
  readonly entries: readonly CrlEntry[];
}

/** Largest CRL number: RFC 5280 §5.2.3 caps it at 20 octets (positive, so 159 bits). */
export const MAX_CRL_NUMBER = (1n << 159n) - 1n;

/**
 * Builds and signs (through `request.issuerSigner`) a CRL. Entries keep the caller's order;
 * times are written in whole seconds.
 * @throws BrokerError invalid `pki.crl_number` (≤ 0 or above 20 bytes), `pki.crl_validity`
 *   (invalid dates, nextUpdate not after thisUpdate), `pki.serial` (not 1–20 bytes of hex, or
 *   zero), `pki.crl_duplicate` (a serial listed twice), `pki.revocation_reason` (unknown
 *   reason), `pki.revocation_date` (invalid date); internal `pki.issuer_*` when the
 *   certificate and signer do not fit or the certificate lacks cRLSign; whatever the Signer
 *   throws
 */
export async function buildCrl(request: CrlRequest): Promise<x509.X509Crl> {
  const crlNumber: unknown = request.crlNumber;
  if (typeof crlNumber !== 'bigint' || crlNumber <= 0n || crlNumber > MAX_CRL_NUMBER) {
    throw invalid('pki.crl_number', `CRL number must be a positive integer of at most 20 bytes, got ${String(crlNumber)}`);
  }
  const thisMs = request.thisUpdate.getTime();
  const nextMs = request.nextUpdate.getTime();
  if (Number.isNaN(thisMs) || Number.isNaN(nextMs)) throw invalid('pki.crl_validity', 'thisUpdate and nextUpdate must be valid dates');
  if (Math.floor(nextMs / 1000) <= Math.floor(thisMs / 1000)) {
    throw invalid('pki.crl_validity', `nextUpdate (${request.nextUpdate.toISOString()}) must be after thisUpdate (${request.thisUpdate.toISOString()})`);
  }
  const seen = new Set<string>();
  const revoked = request.entries.map((entry) => {
    const serial = normalizeSerial(entry.serialNumber);
    if (seen.has(serial)) throw invalid('pki.crl_duplicate', `serial ${serial} is listed twice`);
    seen.add(serial);
    if (Number.isNaN(entry.revokedAt.getTime())) throw invalid('pki.revocation_date', `serial ${serial} has an invalid revocation date`);
    const reason: unknown = entry.reason;
    const code = Object.hasOwn(REVOCATION_REASON_CODES, entry.reason) ? REVOCATION_REASON_CODES[entry.reason] : undefined;
    if (code === undefined) {
      throw invalid('pki.revocation_reason', `serial ${serial} has the unknown revocation reason "${String(reason)}"; use ${Object.keys(REVOCATION_REASON_CODES).join(', ')}`);
    }
    const extensions =
      code === x509.X509CrlReason.unspecified
        ? []
        : [derSequence(derSequence(derOid(ExtensionOid.crlReason), derOctetString(derEnumerated(code))))];
    return derSequence(serialInteger(serial), derTime(entry.revokedAt), ...extensions);
  });

  const issuer = await prepareIssuer(request.issuerSigner, request.issuerCertificate, 'crl');
  const algorithm = algorithmIdentifierOf(request.issuerSigner.algorithm);
  const crlExtensions = [authorityKeyIdentifierExtension(issuer.keyId), crlNumberExtension(crlNumber)].map((extension) => new Uint8Array(extension.rawData));
  const tbs = derSequence(
    derInteger(1), // v2
    algorithm,
    issuer.fields.subjectRaw,
    derTime(request.thisUpdate),
    derTime(request.nextUpdate),
    ...(revoked.length === 0 ? [] : [derSequence(...revoked)]),
    derContext(0, derSequence(...crlExtensions), true),
  );
  const adapter = issuer.signerCrypto;
  const signature = new Uint8Array(await adapter.crypto.subtle.sign(adapter.signingAlgorithm, adapter.signingKey, tbs));
  return new StandardPemCrl(derSequence(tbs, algorithm, derBitString(x509SignatureOf(request.issuerSigner.algorithm, signature))));
}

/** The RFC 7468 PEM label of a CRL. */
export const CRL_PEM_LABEL = 'X509 CRL';

/**
 * An X509Crl whose `toString('pem')` writes the RFC 7468 label `X509 CRL`, which OpenSSL and
 * Go require; @peculiar/x509 writes `CRL`, which `openssl crl` cannot read. {@link buildCrl}
 * returns one.
 */
export class StandardPemCrl extends x509.X509Crl {
  protected override readonly tag: string = CRL_PEM_LABEL;
}

/** Any CRL in PEM with the RFC 7468 label `X509 CRL`. */
export function crlToPem(crl: x509.X509Crl): string {
  return x509.PemConverter.encode(crl.rawData, CRL_PEM_LABEL);
}

/** Lowercase hex of a serial, checked: 1–20 bytes, hex digits only, not zero. */
function normalizeSerial(text: string): string {
  const hex = text.toLowerCase();
  if (!/^([0-9a-f]{2}){1,20}$/.test(hex) || /^0+$/.test(hex)) {
    throw invalid('pki.serial', `"${text.slice(0, 60)}" is not a certificate serial number (1–20 bytes of hex, not zero)`);
  }
  return hex;
}

/** The serial as a DER INTEGER whose content is exactly the certificate's serial octets. */
function serialInteger(hex: string): Buffer {
  return derInteger(BigInt(`0x${hex}`));
}

function derEnumerated(value: number): Buffer {
  return Buffer.from([0x0a, 0x01, value]);
}
