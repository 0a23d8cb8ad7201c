/**
 * The audit key's public half, for `credbroker audit verify` and `credbroker report`: a PUBLIC
 * KEY block (as the ceremony writes it) or a CERTIFICATE.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BrokerError } from '../core/index.js';

/**
 * Reads the audit key's public half from a PEM file: a PUBLIC KEY block (as the ceremony writes
 * it) or a CERTIFICATE.
 * @throws BrokerError invalid `audit.key_file` for a file that cannot be read or holds neither
 */
export function readAuditPublicKey(path: string): KeyObject {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new BrokerError('invalid', { code: 'audit.key_file', publicMessage: `cannot read the audit key ${path} (${(error as NodeJS.ErrnoException).code ?? 'error'})`, cause: error });
  }
  if (!pem.includes('-----BEGIN PUBLIC KEY-----') && !pem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new BrokerError('invalid', { code: 'audit.key_file', publicMessage: `${path} holds neither a PUBLIC KEY nor a CERTIFICATE PEM block: give the audit key's public half (the ceremony writes it, e.g. audit-key.pem)` });
  }
  try {
    // OpenSSL reads the public key of a PUBLIC KEY block or of a certificate alike.
    return createPublicKey({ key: pem, format: 'pem' });
  } catch (error) {
    throw new BrokerError('invalid', { code: 'audit.key_file', publicMessage: `the audit key ${path} is not a valid PEM public key or certificate`, cause: error });
  }
}
