/**
 * @peculiar/x509 objects over DER that credbroker has just built, parsed only when asked for
 * something the builder does not already know.
 *
 * Measured (DESIGN.md "Performance shape"): `new x509.X509Certificate(der)` parses the whole
 * certificate with the library's ASN.1 schema, ≈ 270 µs for a leaf, and `new x509.PublicKey`
 * ≈ 35 µs — together more than building and signing the leaf on the fast path. The broker
 * needs of a new leaf its DER, PEM, serial number, validity and public key DER; those come from
 * the builder, and anything else (names, extensions, verify, …) parses the DER the first time,
 * exactly as the library would have. A {@link PrebuiltCertificate} is an `x509.X509Certificate`
 * in every respect callers can see; the unit tests compare every public getter with a
 * library-parsed copy.
 *
 * How: the library's classes keep their parsed ASN.1 in a plain `asn` property that every
 * getter reads. Here `asn` (and PublicKey's `algorithm`, computed from it) are accessors that
 * parse on first read, by constructing the library's own object from the DER.
 */
import * as x509 from '@peculiar/x509';

/** What the builder knows about the certificate it encoded (the same values as in the DER). */
export interface PrebuiltCertificateFields {
  /** Lowercase hex of the serial number's content octets (as X509Certificate.serialNumber). */
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** The SubjectPublicKeyInfo DER. */
  readonly spki: Uint8Array;
}

/** Passed to the library's constructors instead of a parsed ASN.1 object. */
const NOT_PARSED_YET: object = Object.freeze({ notParsedYet: true });

interface PrebuiltState {
  readonly rawData: ArrayBuffer;
  /** The library's object for the same DER, once something needed it. */
  parsed: Record<string, unknown> | undefined;
  /** Values assigned to a delegated property after construction. */
  readonly assigned: Map<string, unknown>;
}

const states = new WeakMap<object, PrebuiltState>();

function stateOf(object: object): PrebuiltState {
  const state = states.get(object);
  if (state === undefined) throw new TypeError('prebuilt @peculiar/x509 object used before construction');
  return state;
}

function track(object: object, der: Uint8Array): void {
  const rawData = new ArrayBuffer(der.length);
  new Uint8Array(rawData).set(der);
  states.set(object, { rawData, parsed: undefined, assigned: new Map() });
}

/**
 * Makes `properties` of `prototype` read from the library's object for the same DER, parsed
 * on the first read. The library's constructor sets them before `track` ran: ignored.
 */
function delegateToParsed(prototype: object, properties: readonly string[], parse: (rawData: ArrayBuffer) => object): void {
  for (const property of properties) {
    Object.defineProperty(prototype, property, {
      configurable: false,
      enumerable: false,
      get(this: object): unknown {
        const state = states.get(this);
        if (state === undefined) return undefined;
        if (state.assigned.has(property)) return state.assigned.get(property);
        state.parsed ??= parse(state.rawData) as Record<string, unknown>;
        return state.parsed[property];
      },
      set(this: object, value: unknown) {
        const state = states.get(this);
        if (state !== undefined) state.assigned.set(property, value);
        else if (value !== NOT_PARSED_YET) throw new TypeError(`unexpected ${property} while constructing a prebuilt @peculiar/x509 object`);
      },
    });
  }
}

/** An x509.PublicKey over known SPKI DER; parsed lazily. */
export class PrebuiltPublicKey extends x509.PublicKey {
  /** @param spki SubjectPublicKeyInfo DER (copied) */
  constructor(spki: Uint8Array) {
    super(NOT_PARSED_YET as never);
    track(this, spki);
  }

  override get rawData(): ArrayBuffer {
    return stateOf(this).rawData;
  }

  /** The library computes `algorithm` here from the parsed key; it is delegated instead. */
  protected override onInit(): void {
    // Parsed on first use (see delegateToParsed).
  }
}
// `asn` and `algorithm` are properties in the library's types, which TypeScript will not let a
// subclass redeclare as accessors: defined on the prototype.
delegateToParsed(PrebuiltPublicKey.prototype, ['asn', 'algorithm'], (rawData) => new x509.PublicKey(rawData));

/** An x509.X509Certificate whose DER and main fields are known; parsed lazily. */
export class PrebuiltCertificate extends x509.X509Certificate {
  readonly #fields: PrebuiltCertificateFields;
  #publicKey: x509.PublicKey | undefined;

  /**
   * @param der the Certificate DER (copied)
   * @param fields the values encoded in it
   */
  constructor(der: Uint8Array, fields: PrebuiltCertificateFields) {
    super(NOT_PARSED_YET as never);
    track(this, der);
    this.#fields = fields;
  }

  override get rawData(): ArrayBuffer {
    return stateOf(this).rawData;
  }

  override get serialNumber(): string {
    return this.#fields.serialNumber;
  }

  override get notBefore(): Date {
    return this.#fields.notBefore;
  }

  override get notAfter(): Date {
    return this.#fields.notAfter;
  }

  override get publicKey(): x509.PublicKey {
    this.#publicKey ??= new PrebuiltPublicKey(this.#fields.spki);
    return this.#publicKey;
  }
}
delegateToParsed(PrebuiltCertificate.prototype, ['asn'], (rawData) => new x509.X509Certificate(rawData));
