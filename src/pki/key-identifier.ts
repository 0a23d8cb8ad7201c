/**
 * Key identifiers for the subjectKeyIdentifier and authorityKeyIdentifier extensions: the
 * SHA-1 of the subjectPublicKey BIT STRING's bits (RFC 5280 §4.2.1.2, method 1). SHA-1 serves
 * here as an identifier, not as a signature hash; it is what OpenSSL, Go and @peculiar/x509
 * compute, so identifiers match across tools.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { spkiOf } from '../core/index.js';
import { DerCursor, DerTag, derChildren, derDecodeBitString } from './der-reader.js';

/**
 * The 20-byte key identifier of a public key (a KeyObject or its DER SubjectPublicKeyInfo).
 * @throws DerError if the SPKI is malformed
 */
export function keyIdentifierOf(publicKey: KeyObject | Uint8Array): Buffer {
  const spki = publicKey instanceof Uint8Array ? publicKey : spkiOf(publicKey);
  const outer = new DerCursor(spki, 'SubjectPublicKeyInfo');
  const body = derChildren(outer.read(DerTag.sequence, 'SubjectPublicKeyInfo'), 'SubjectPublicKeyInfo');
  outer.end();
  body.read(DerTag.sequence, 'algorithm');
  const bits = derDecodeBitString(body.read(DerTag.bitString, 'subjectPublicKey').content, 'subjectPublicKey');
  body.end();
  return createHash('sha1').update(bits.bytes).digest();
}
