/**
 * The ceremony plan: one YAML file that says everything a key ceremony will do (Boulder's
 * one-file ceremonies, without the PIN inside). It is validated completely — schema and
 * meaning — before any HSM call: key types, the intermediate's validity inside the root's,
 * token and key labels, output files that must not exist, input files that must.
 *
 * Relative paths (outputs, share files, PIN files) are resolved against the output folder
 * (`--out`, default: the plan's folder).
 */
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import * as x509 from '@peculiar/x509';
import { BrokerError, KEY_TYPES, parseDurationMs, type KeyType } from '../core/index.js';
import { ConfigError, durationSchema, parseConfig, secretSource, type ConfigProblem, type DeepReadonly, type SecretSource } from '../config/index.js';
import { parseTrustDomain } from '../pki/index.js';

/** Longest validity a ceremony may give a root (30 years) and an intermediate (5 years). */
export const MAX_ROOT_VALIDITY_MS = 30 * 365 * 86_400_000;
export const MAX_INTERMEDIATE_VALIDITY_MS = 5 * 365 * 86_400_000;
/** Most officers a quorum may have. */
export const MAX_OFFICERS = 16;

const keyType = z.string().refine((value) => (KEY_TYPES as readonly string[]).includes(value), {
  error: (issue) =>
    /^RSA-?(512|768|1024|2048)$/i.test(String(issue.input))
      ? `${String(issue.input)} is too weak for a CA or signing key: use RSA-3072, P-256, P-384 or Ed25519`
      : `expected one of ${KEY_TYPES.join(', ')}`,
});

const label = (what: string, maxBytes: number) =>
  z
    .string()
    .min(1)
    .refine((value) => Buffer.byteLength(value) <= maxBytes && /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(value), {
      error: `expected a ${what} of 1 to ${maxBytes} printable ASCII characters without leading or trailing spaces`,
    });

const duration = durationSchema;

const path = z.string().min(1, { error: 'expected a file path' });

const keySpec = z.strictObject({ label: label('key label', 64), type: keyType });

const officer = z.strictObject({
  /** Name of the security officer, recorded in the transcript. */
  name: z.string().min(1).max(64),
  /**
   * Where this officer's share comes from (existing root token) or goes to (root token
   * initialised in this ceremony: a new 0600 file that must not exist).
   */
  share: secretSource('root PIN share'),
});

/** The schema of a ceremony plan file (version 1). */
export const ceremonyPlanSchema = z.strictObject({
  version: z.literal(1, { error: 'expected version: 1' }),
  /** A name for this ceremony, recorded in the transcript. */
  name: z.string().min(1).max(100),
  /** The SPIFFE trust domain the intermediate is constrained to. */
  trustDomain: z.string(),
  hsm: z.strictObject({ module: z.string().min(1).optional() }).default({}),
  root: z.strictObject({
    token: z.strictObject({
      label: label('token label', 32),
      /** true: initialise a free token now; its PINs are generated and split among the officers. */
      initialize: z.boolean().default(false),
    }),
    /** Needed when the token is initialised: how many officers get a share, how many must meet. */
    quorum: z.strictObject({ shares: z.int().min(1).max(MAX_OFFICERS), threshold: z.int().min(1).max(MAX_OFFICERS) }).optional(),
    officers: z.array(officer).min(1).max(MAX_OFFICERS),
    key: keySpec.extend({ create: z.boolean().default(false) }),
    certificate: z.strictObject({
      /** Subject DN (RFC 4514), used when the certificate is created. */
      subject: z.string().min(1).optional(),
      /** Validity when created, e.g. 3650d. */
      validity: duration.optional(),
      /** Written when created (must not exist), read otherwise. */
      path,
    }),
  }),
  online: z
    .strictObject({
      token: z.strictObject({
        label: label('token label', 32),
        initialize: z.boolean().default(false),
        /** The broker's user PIN: generated into this new 0600 file when initialising, else read. */
        pin: secretSource('online token user PIN'),
        /** Only when initialising: where the generated SO PIN is written (new 0600 file). */
        soPin: secretSource('online token SO PIN').optional(),
      }),
      intermediate: z
        .strictObject({
          key: keySpec,
          subject: z.string().min(1),
          validity: duration,
          /** Written; must not exist. */
          output: path,
        })
        .optional(),
      /** The token-signing key; `publicKey`: where to write its public key (PEM, new file) for verifiers. */
      tokenSigning: keySpec.extend({ publicKey: path.optional() }).optional(),
      /** The audit checkpoint key; `publicKey`: where to write its public key (PEM) for `credbroker audit verify --audit-key`. */
      audit: keySpec.extend({ publicKey: path.optional() }).optional(),
    })
    .optional(),
  /**
   * Root renewal: a new root key on the root token, its self-signed certificate (the old root's
   * subject, so cross certificates are self-issued and fit pathLenConstraint 1) and two cross
   * certificates, so that peers trusting either root accept chains through the other. Needs an
   * existing root (root.key.create false).
   */
  rootRenewal: z
    .strictObject({
      /** The new root key: a new label on the root token, generated non-extractable. */
      key: keySpec,
      /** The new root's validity, e.g. 3650d. */
      validity: duration,
      /** The new self-signed root certificate; written, must not exist. */
      certificate: path,
      /** The new root's name and key, issued by the old root (for peers trusting only the old root); written. */
      newSignedByOld: path,
      /** The old root's name and key, issued by the new root (for peers trusting only the new root); written. */
      oldSignedByNew: path,
    })
    .optional(),
  crl: z
    .strictObject({
      /** CRL number; default: the previous CRL's number + 1, or 1. */
      number: z.int().min(1).optional(),
      /** The last CRL this root issued, to keep CRL numbers monotonic. */
      previous: path.optional(),
      nextUpdate: duration,
      output: path,
    })
    .optional(),
  /** The transcript (hash-chained JSON lines); must not exist. */
  transcript: path,
});

/** A plan as written (paths still relative). */
export type CeremonyPlanInput = DeepReadonly<z.output<typeof ceremonyPlanSchema>>;

/** A key the plan creates or uses. */
export interface PlannedKey {
  readonly label: string;
  readonly keyType: KeyType;
}

/** A plan after every check that needs no HSM: absolute paths, parsed durations. */
export interface CeremonyPlan {
  readonly name: string;
  readonly planPath: string;
  /** SHA-256 of the plan file's bytes, hex: recorded in the transcript. */
  readonly planSha256: string;
  readonly baseDir: string;
  readonly trustDomain: string;
  readonly modulePath: string | undefined;
  readonly root: {
    readonly tokenLabel: string;
    readonly initialize: boolean;
    readonly quorum: { readonly shares: number; readonly threshold: number } | undefined;
    readonly officers: readonly { readonly name: string; readonly share: SecretSource }[];
    readonly key: PlannedKey & { readonly create: boolean };
    readonly certificate:
      | { readonly create: true; readonly subject: string; readonly validityMs: number; readonly path: string }
      | { readonly create: false; readonly path: string; readonly existing: x509.X509Certificate };
  };
  readonly online:
    | {
        readonly tokenLabel: string;
        readonly initialize: boolean;
        readonly pin: SecretSource;
        readonly soPin: SecretSource | undefined;
        readonly intermediate: { readonly key: PlannedKey; readonly subject: string; readonly validityMs: number; readonly output: string } | undefined;
        readonly tokenSigning: (PlannedKey & { readonly publicKeyOutput: string | undefined }) | undefined;
        readonly audit: (PlannedKey & { readonly publicKeyOutput: string | undefined }) | undefined;
      }
    | undefined;
  readonly rootRenewal:
    | { readonly key: PlannedKey; readonly validityMs: number; readonly certificate: string; readonly newSignedByOld: string; readonly oldSignedByNew: string }
    | undefined;
  readonly crl: { readonly number: bigint; readonly nextUpdateMs: number; readonly output: string } | undefined;
  readonly transcript: string;
}

/**
 * Reads and validates a plan completely without touching any HSM.
 * @param outDir folder for relative paths (default: the plan's folder)
 * @param now the ceremony's time, for validity checks against an existing root
 * @throws ConfigError listing every problem with its field path
 */
export function loadCeremonyPlan(planPath: string, outDir: string | undefined, now: Date): CeremonyPlan {
  const file = resolve(planPath);
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (error) {
    throw ConfigError.unreadable(file, error);
  }
  const baseDir = resolve(outDir ?? dirname(file));
  const input = parseConfig(bytes.toString('utf8'), ceremonyPlanSchema, file, { baseDir });
  const problems: ConfigProblem[] = [];
  const problem = (at: string, message: string): void => {
    problems.push({ path: at, message });
  };
  const abs = (value: string): string => (isAbsolute(value) ? value : resolve(baseDir, value));

  let trustDomain = input.trustDomain;
  try {
    trustDomain = parseTrustDomain(input.trustDomain);
  } catch (error) {
    problem('trustDomain', error instanceof BrokerError ? error.publicMessage : 'invalid trust domain');
  }

  // Quorum and officers.
  const { root } = input;
  if (root.token.initialize) {
    if (root.quorum === undefined) problem('root.quorum', 'required when root.token.initialize is true: { shares: N, threshold: M }');
    else {
      if (root.quorum.threshold > root.quorum.shares) problem('root.quorum.threshold', `a threshold of ${root.quorum.threshold} cannot exceed ${root.quorum.shares} shares`);
      if (root.officers.length !== root.quorum.shares) {
        problem('root.officers', `${root.quorum.shares} shares need ${root.quorum.shares} officers, ${root.officers.length} listed`);
      }
    }
    root.officers.forEach((o, index) => {
      if (!('file' in o.share)) problem(`root.officers[${index}].share`, 'when the root token is initialised, each share is written to its officer\'s own file: { file: <path> }');
    });
    if (!root.key.create) problem('root.key.create', 'a freshly initialised root token has no key: set create: true');
  } else if (root.quorum !== undefined && root.officers.length < root.quorum.threshold) {
    problem('root.officers', `${root.quorum.threshold} of ${root.quorum.shares} officers must be present, ${root.officers.length} listed`);
  }
  const names = new Set<string>();
  root.officers.forEach((o, index) => {
    if (names.has(o.name)) problem(`root.officers[${index}].name`, `officer "${o.name}" is listed twice`);
    names.add(o.name);
  });

  // Root certificate: created now, or read from disk.
  let rootNotAfter: Date | undefined;
  let certificate: CeremonyPlan['root']['certificate'] | undefined;
  const certificatePath = abs(root.certificate.path);
  if (root.key.create) {
    if (root.certificate.subject === undefined) problem('root.certificate.subject', 'required when the root key is created');
    if (root.certificate.validity === undefined) problem('root.certificate.validity', 'required when the root key is created');
    const validityMs = root.certificate.validity === undefined ? 0 : parseDurationMs(root.certificate.validity);
    if (validityMs > MAX_ROOT_VALIDITY_MS) problem('root.certificate.validity', 'a root may be valid for at most 30 years (10950d)');
    rootNotAfter = new Date(now.getTime() + validityMs);
    certificate = { create: true, subject: root.certificate.subject ?? '', validityMs, path: certificatePath };
  } else if (!existsSync(certificatePath)) {
    problem('root.certificate.path', `${certificatePath} does not exist: an existing root key needs its certificate`);
  } else {
    try {
      const existing = new x509.X509Certificate(readFileSync(certificatePath));
      rootNotAfter = existing.notAfter;
      if (existing.notAfter.getTime() <= now.getTime()) problem('root.certificate.path', `the root certificate ${certificatePath} expired on ${existing.notAfter.toISOString()}`);
      certificate = { create: false, path: certificatePath, existing };
    } catch {
      problem('root.certificate.path', `${certificatePath} is not a PEM or DER certificate`);
    }
  }

  // Online token.
  const online = input.online;
  let intermediate: NonNullable<CeremonyPlan['online']>['intermediate'];
  if (online !== undefined) {
    if (online.token.label === root.token.label) problem('online.token.label', 'the online token must not be the root token: the root key lives on its own token, used only in ceremonies');
    if (online.token.initialize) {
      if (!('file' in online.token.pin)) problem('online.token.pin', 'when the online token is initialised, its generated PIN is written to a new file: { file: <path> }');
      if (online.token.soPin === undefined || !('file' in online.token.soPin)) problem('online.token.soPin', 'when the online token is initialised, its generated SO PIN is written to a new file: { file: <path> }');
    } else if (online.token.soPin !== undefined) {
      problem('online.token.soPin', 'only used when the online token is initialised');
    }
    if (online.intermediate !== undefined) {
      const validityMs = parseDurationMs(online.intermediate.validity);
      if (validityMs > MAX_INTERMEDIATE_VALIDITY_MS) problem('online.intermediate.validity', 'an intermediate may be valid for at most 5 years (1825d)');
      const notAfter = new Date(now.getTime() + validityMs);
      if (rootNotAfter !== undefined && notAfter.getTime() > rootNotAfter.getTime()) {
        problem(
          'online.intermediate.validity',
          `the intermediate would end ${notAfter.toISOString()}, after the root (${rootNotAfter.toISOString()}): an intermediate must lie inside its root's validity`,
        );
      }
      intermediate = { key: plannedKey(online.intermediate.key), subject: online.intermediate.subject, validityMs, output: abs(online.intermediate.output) };
    }
  }

  // Key labels: unique within their token.
  const onlineKeys = online === undefined ? [] : [online.intermediate?.key, online.tokenSigning, online.audit].filter((k) => k !== undefined);
  const seen = new Set<string>();
  for (const key of onlineKeys) {
    if (seen.has(key.label)) problem('online', `key label "${key.label}" is used twice on the online token`);
    seen.add(key.label);
  }

  // Root renewal: a new key beside the existing root's.
  let rootRenewal: CeremonyPlan['rootRenewal'];
  if (input.rootRenewal !== undefined) {
    const renewal = input.rootRenewal;
    if (root.key.create) problem('rootRenewal', 'a root renewal cross-signs with an existing root: set root.key.create to false and name the old root\'s key and certificate');
    if (renewal.key.label === root.key.label) problem('rootRenewal.key.label', `the new root key needs a new label, not the old root's "${root.key.label}"`);
    const validityMs = parseDurationMs(renewal.validity);
    if (validityMs > MAX_ROOT_VALIDITY_MS) problem('rootRenewal.validity', 'a root may be valid for at most 30 years (10950d)');
    if (online?.intermediate !== undefined) problem('online.intermediate', 'a root renewal signs no intermediate: run a ceremony with the new root (root.key: the new label) for the intermediate under it');
    rootRenewal = { key: plannedKey(renewal.key), validityMs, certificate: abs(renewal.certificate), newSignedByOld: abs(renewal.newSignedByOld), oldSignedByNew: abs(renewal.oldSignedByNew) };
  }

  // CRL number.
  let crl: CeremonyPlan['crl'];
  if (input.crl !== undefined) {
    let number = input.crl.number === undefined ? 1n : BigInt(input.crl.number);
    if (input.crl.previous !== undefined) {
      const previousPath = abs(input.crl.previous);
      try {
        const previous = new x509.X509Crl(readFileSync(previousPath));
        const previousNumber = crlNumberOf(previous);
        if (input.crl.number === undefined) number = previousNumber + 1n;
        else if (number <= previousNumber) problem('crl.number', `CRL numbers only grow: the previous CRL has number ${previousNumber}`);
      } catch {
        problem('crl.previous', `${previousPath} cannot be read as a CRL`);
      }
    }
    crl = { number, nextUpdateMs: parseDurationMs(input.crl.nextUpdate), output: abs(input.crl.output) };
  }

  // Outputs never overwrite anything; inputs must exist.
  const outputs: [string, string][] = [['transcript', abs(input.transcript)]];
  if (certificate?.create === true) outputs.push(['root.certificate.path', certificatePath]);
  if (intermediate !== undefined) outputs.push(['online.intermediate.output', intermediate.output]);
  if (crl !== undefined) outputs.push(['crl.output', crl.output]);
  if (rootRenewal !== undefined) {
    outputs.push(['rootRenewal.certificate', rootRenewal.certificate], ['rootRenewal.newSignedByOld', rootRenewal.newSignedByOld], ['rootRenewal.oldSignedByNew', rootRenewal.oldSignedByNew]);
  }
  if (root.token.initialize) {
    root.officers.forEach((o, index) => {
      if ('file' in o.share) outputs.push([`root.officers[${index}].share`, o.share.file]);
    });
  }
  if (online?.tokenSigning?.publicKey !== undefined) outputs.push(['online.tokenSigning.publicKey', abs(online.tokenSigning.publicKey)]);
  if (online?.audit?.publicKey !== undefined) outputs.push(['online.audit.publicKey', abs(online.audit.publicKey)]);
  if (online?.token.initialize === true) {
    if ('file' in online.token.pin) outputs.push(['online.token.pin', online.token.pin.file]);
    if (online.token.soPin !== undefined && 'file' in online.token.soPin) outputs.push(['online.token.soPin', online.token.soPin.file]);
  }
  const claimed = new Map<string, string>();
  for (const [at, output] of outputs) {
    if (existsSync(output)) problem(at, `${output} already exists: a ceremony never overwrites a file`);
    const other = claimed.get(output);
    if (other !== undefined) problem(at, `${output} is also the output of ${other}`);
    claimed.set(output, at);
  }

  if (problems.length > 0) throw new ConfigError(file, problems);
  if (certificate === undefined) throw new ConfigError(file, [{ path: 'root.certificate', message: 'unusable' }]);

  return Object.freeze({
    name: input.name,
    planPath: file,
    planSha256: createHash('sha256').update(bytes).digest('hex'),
    baseDir,
    trustDomain,
    modulePath: input.hsm.module,
    root: {
      tokenLabel: root.token.label,
      initialize: root.token.initialize,
      quorum: root.quorum,
      officers: root.officers,
      key: { ...plannedKey(root.key), create: root.key.create },
      certificate,
    },
    online:
      online === undefined
        ? undefined
        : {
            tokenLabel: online.token.label,
            initialize: online.token.initialize,
            pin: online.token.pin,
            soPin: online.token.soPin,
            intermediate,
            tokenSigning: online.tokenSigning === undefined ? undefined : { ...plannedKey(online.tokenSigning), publicKeyOutput: online.tokenSigning.publicKey === undefined ? undefined : abs(online.tokenSigning.publicKey) },
            audit: online.audit === undefined ? undefined : { ...plannedKey(online.audit), publicKeyOutput: online.audit.publicKey === undefined ? undefined : abs(online.audit.publicKey) },
          },
    rootRenewal,
    crl,
    transcript: abs(input.transcript),
  });
}

function plannedKey(key: { readonly label: string; readonly type: string }): PlannedKey {
  return { label: key.label, keyType: key.type as KeyType };
}

/** The CRL number extension (2.5.29.20) of a CRL. */
export function crlNumberOf(crl: x509.X509Crl): bigint {
  const extension = crl.extensions.find((e) => e.type === '2.5.29.20');
  if (extension === undefined) throw new RangeError('CRL has no CRL number');
  // The value is a DER INTEGER: 02 len bytes.
  const value = new Uint8Array(extension.value);
  if (value[0] !== 0x02) throw new RangeError('CRL number is not an INTEGER');
  let number = 0n;
  for (const byte of value.subarray(2)) number = (number << 8n) | BigInt(byte);
  return number;
}
