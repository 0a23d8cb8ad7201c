/**
 * Subject names of CA certificates from RFC 4514 text (`CN=credbroker root 2026,O=Example`).
 *
 * @peculiar/x509 parses such text leniently (`garbage` becomes an empty name); a ceremony plan
 * deserves better, so every attribute is checked here: a known type, a non-empty value within
 * the RFC 5280 Appendix A upper bound, and nothing lost in parsing.
 */
import * as x509 from '@peculiar/x509';
import { invalid } from './pki-error.js';

/** Attribute types accepted in subject names, with their RFC 5280 upper bounds in characters. */
const UPPER_BOUNDS: Readonly<Record<string, number>> = Object.freeze({
  CN: 64,
  O: 64,
  OU: 64,
  C: 2,
  L: 128,
  ST: 128,
  DC: 63,
  SERIALNUMBER: 64,
});

/**
 * Parses a non-empty RFC 4514 distinguished name.
 * @param text e.g. `CN=credbroker intermediate 2026,O=Example`
 * @param what names the field in errors, e.g. `root subject`
 * @throws BrokerError invalid `pki.subject` saying what is wrong
 */
export function parseDistinguishedName(text: string, what: string): x509.Name {
  const fail = (problem: string): never => {
    throw invalid('pki.subject', `${what} "${text.slice(0, 200)}" ${problem}`);
  };
  if (text.trim() === '') fail('is empty: a CA certificate needs a subject');
  const tokens = splitUnescaped(text);
  for (const token of tokens) {
    const match = /^\s*([A-Za-z]+)\s*=(.*)$/s.exec(token);
    if (match === null) fail(`has "${token.trim()}", which is not TYPE=value`);
    const type = (match?.[1] ?? '').toUpperCase();
    if (UPPER_BOUNDS[type] === undefined) fail(`uses the attribute type "${match?.[1] ?? ''}"; use ${Object.keys(UPPER_BOUNDS).join(', ')}`);
    if ((match?.[2] ?? '').trim() === '') fail(`has an empty ${type} value`);
  }
  let name: x509.Name;
  try {
    name = new x509.Name(text);
  } catch (error) {
    throw invalid('pki.subject', `${what} "${text.slice(0, 200)}" cannot be parsed as an RFC 4514 name`, error);
  }
  const attributes = name.toJSON().flatMap((rdn) => Object.entries(rdn).flatMap(([type, values]) => values.map((value) => ({ type, value }))));
  if (attributes.length !== tokens.length) fail('cannot be parsed as an RFC 4514 name');
  for (const { type, value } of attributes) {
    const bound = UPPER_BOUNDS[type.toUpperCase()];
    if (bound !== undefined && Array.from(value).length > bound) fail(`has a ${type} longer than ${bound} characters`);
    if (type.toUpperCase() === 'C' && !/^[A-Z]{2}$/.test(value)) fail('has a C that is not a two-letter country code');
  }
  return name;
}

/** Splits on unescaped `,` and `+` (RFC 4514 §2.4 escapes with a backslash). */
function splitUnescaped(text: string): string[] {
  const tokens: string[] = [];
  let current = '';
  for (let i = 0; i < text.length; i++) {
    const char = text[i] ?? '';
    if (char === '\\') {
      current += char + (text[i + 1] ?? '');
      i++;
    } else if (char === ',' || char === '+') {
      tokens.push(current);
      current = '';
    } else {
      current += char;
    }
  }
  tokens.push(current);
  return tokens;
}
