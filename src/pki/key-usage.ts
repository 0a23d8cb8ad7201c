/** The keyUsage bits of RFC 5280 §4.2.1.3, by name and bit number. */

/** keyUsage bit names. */
export type KeyUsageName =
  | 'digitalSignature'
  | 'contentCommitment'
  | 'keyEncipherment'
  | 'dataEncipherment'
  | 'keyAgreement'
  | 'keyCertSign'
  | 'cRLSign'
  | 'encipherOnly'
  | 'decipherOnly';

/** Bit numbers in the order of the RFC's `KeyUsage ::= BIT STRING { … }`. */
export const KEY_USAGE_BITS: Readonly<Record<KeyUsageName, number>> = Object.freeze({
  digitalSignature: 0,
  contentCommitment: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
  encipherOnly: 7,
  decipherOnly: 8,
});

const NAME_OF_BIT: readonly KeyUsageName[] = Object.keys(KEY_USAGE_BITS) as KeyUsageName[];

/** The name of a bit number, or `bit <n>` for bits the RFC does not define. */
export function keyUsageName(bit: number): string {
  return NAME_OF_BIT[bit] ?? `bit ${bit}`;
}
