/**
 * Runs a key ceremony from a validated plan, in three phases:
 *
 * 1. **Plan** (no HSM): {@link loadCeremonyPlan} checks schema and meaning.
 * 2. **Preflight** (HSM read-only): tokens present or free as the plan says; officers' shares
 *    combined in memory (a short or wrong quorum fails here, before any login attempt);
 *    logins; key labels free or present as the plan says. Nothing is written.
 * 3. **Execution**: each step is printed as it runs and appended to a hash-chained transcript;
 *    the transcript is signed at the end with the root key.
 *
 * Keys generated before a later step fails stay on their token (a ceremony never destroys key
 * material); the transcript records the failure, and a new ceremony with new labels follows.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import * as x509 from '@peculiar/x509';
import { BrokerError, Secret, silentLogger, type Clock, type Logger, type RandomSource } from '../core/index.js';
import { readSecret, type PromptIo, type SecretSource } from '../config/index.js';
import { HsmSigner, HsmToken, initToken, listTokens, type HsmKeyInfo } from '../hsm/index.js';
import { buildCrl, createCrossCertificate, createIntermediateCertificate, createRootCertificate, verifyChain } from '../pki/index.js';
import { mkdir } from 'node:fs/promises';
import { writeNewFile } from './exclusive-file.js';
import { loadCeremonyPlan, type CeremonyPlan, type PlannedKey } from './plan.js';
import { combineShares, parseShare, splitSecret } from './quorum.js';
import { writeShareFile } from './share-file.js';
import { TranscriptWriter } from './transcript.js';

/** What a ceremony needs from its surroundings. */
export interface CeremonyContext {
  readonly clock: Clock;
  readonly random: RandomSource;
  /** Progress and summary lines for the people in the room. */
  readonly print: (line: string) => void;
  /** The terminal for `prompt` secret sources (officers typing their shares). */
  readonly prompt?: PromptIo;
  readonly logger?: Logger;
}

/** Options of {@link runCeremony}. */
export interface CeremonyOptions {
  /** Folder for relative paths in the plan (default: the plan's folder). */
  readonly outDir?: string | undefined;
  /** Validate and print the steps; touch no HSM and write nothing. */
  readonly dryRun?: boolean;
}

/** What a finished ceremony produced. */
export interface CeremonySummary {
  readonly name: string;
  readonly dryRun: boolean;
  readonly steps: readonly string[];
  readonly transcript: string | null;
  readonly rootCertificate: string | null;
  readonly intermediateCertificate: string | null;
  readonly keys: readonly { token: string; label: string; id: string; keyType: string }[];
  readonly durationMs: number;
}

/** Bytes of generated PINs: 16 random bytes, written as 32 hex characters. */
const PIN_BYTES = 16;

/**
 * The root token's secret that the officers share: its user PIN and SO PIN, 16 random bytes
 * each, split as one 32-byte secret so every officer holds one share of both.
 */
function rootPins(secret: Secret): { userPin: Secret; soPin: Secret } {
  return secret.revealBytes((bytes) => {
    if (bytes.length !== 2 * PIN_BYTES) {
      throw new BrokerError('invalid', { code: 'ceremony.share_wrong', publicMessage: 'the shares do not reconstruct a root PIN of the expected length' });
    }
    return {
      userPin: Secret.from(Buffer.from(bytes.subarray(0, PIN_BYTES)).toString('hex'), 'quorum'),
      soPin: Secret.from(Buffer.from(bytes.subarray(PIN_BYTES)).toString('hex'), 'quorum'),
    };
  });
}

/** The steps a plan will run, in order, as people read them. */
export function describeSteps(plan: CeremonyPlan): string[] {
  const steps: string[] = [];
  const { root, online } = plan;
  const quorum = root.quorum === undefined ? '' : ` (${root.quorum.threshold} of ${root.quorum.shares})`;
  if (root.initialize) {
    steps.push(`initialise root token "${root.tokenLabel}" with generated PINs; split its PINs among ${root.officers.length} officer(s)${quorum}, each share to its officer's own 0600 file`);
  } else {
    steps.push(`combine the root PIN from the shares of ${root.officers.map((o) => o.name).join(', ')}${quorum} and log in to root token "${root.tokenLabel}"`);
  }
  steps.push(root.key.create ? `generate ${root.key.keyType} root key "${root.key.label}" on "${root.tokenLabel}"` : `use root key "${root.key.label}" on "${root.tokenLabel}"`);
  steps.push(
    root.certificate.create
      ? `self-sign the root certificate "${root.certificate.subject}" valid ${Math.round(root.certificate.validityMs / 86_400_000)} days -> ${root.certificate.path}`
      : `use the root certificate ${root.certificate.path}`,
  );
  const renewal = plan.rootRenewal;
  if (renewal !== undefined) {
    steps.push(`generate ${renewal.key.keyType} new root key "${renewal.key.label}" on "${root.tokenLabel}"`);
    steps.push(`self-sign the new root certificate (the old root's subject) valid ${Math.round(renewal.validityMs / 86_400_000)} days -> ${renewal.certificate}`);
    steps.push(`cross-sign: the new root's key by the old root -> ${renewal.newSignedByOld}; the old root's key by the new root -> ${renewal.oldSignedByNew}`);
  }
  if (online !== undefined) {
    steps.push(online.initialize ? `initialise online token "${online.tokenLabel}" with generated PINs (written to new 0600 files)` : `log in to online token "${online.tokenLabel}"`);
    if (online.intermediate !== undefined) {
      const i = online.intermediate;
      steps.push(`generate ${i.key.keyType} intermediate key "${i.key.label}" on "${online.tokenLabel}"`);
      steps.push(`sign the intermediate certificate "${i.subject}" (pathLen 0, name constraint: only SPIFFE IDs of ${plan.trustDomain}) valid ${Math.round(i.validityMs / 86_400_000)} days -> ${i.output}`);
    }
    const publicKey = (output: string | undefined): string => (output === undefined ? '' : `; public key -> ${output}`);
    if (online.tokenSigning !== undefined) steps.push(`generate ${online.tokenSigning.keyType} token-signing key "${online.tokenSigning.label}" on "${online.tokenLabel}"${publicKey(online.tokenSigning.publicKeyOutput)}`);
    if (online.audit !== undefined) steps.push(`generate ${online.audit.keyType} audit key "${online.audit.label}" on "${online.tokenLabel}"${publicKey(online.audit.publicKeyOutput)}`);
  }
  if (plan.crl !== undefined) steps.push(`sign the root's CRL number ${plan.crl.number}, next update in ${Math.round(plan.crl.nextUpdateMs / 86_400_000)} days -> ${plan.crl.output}`);
  steps.push(`verify the chain, then sign the transcript with the root key -> ${plan.transcript}`);
  return steps;
}

/**
 * Runs the ceremony the plan at `planPath` describes.
 * @throws ConfigError for plan problems (nothing touched); BrokerError for preflight problems
 *   (nothing written) and execution failures (recorded in the transcript)
 */
export async function runCeremony(planPath: string, options: CeremonyOptions, context: CeremonyContext): Promise<CeremonySummary> {
  const started = performance.now();
  const plan = loadCeremonyPlan(planPath, options.outDir, context.clock.now());
  const steps = describeSteps(plan);
  context.print(`ceremony "${plan.name}" (plan sha256 ${plan.planSha256.slice(0, 16)}…): ${steps.length} steps`);
  if (options.dryRun === true) {
    steps.forEach((step, index) => {
      context.print(`  ${index + 1}. ${step}`);
    });
    context.print('dry run: the plan is valid; no HSM was touched and nothing was written');
    return { name: plan.name, dryRun: true, steps, transcript: null, rootCertificate: null, intermediateCertificate: null, keys: [], durationMs: performance.now() - started };
  }
  const run = new CeremonyRun(plan, context, steps);
  try {
    await run.preflight();
    await run.execute();
  } finally {
    await run.close();
  }
  const durationMs = performance.now() - started;
  context.print(`\nsummary: ceremony "${plan.name}" completed in ${(durationMs / 1000).toFixed(1)} s`);
  for (const key of run.keys) context.print(`  key   ${key.token}/${key.label}  ${key.keyType}  id ${key.id}`);
  for (const [what, path] of run.outputs) context.print(`  file  ${what}: ${path}`);
  context.print(`  verify offline: credbroker ceremony verify ${plan.transcript} --root-cert ${plan.root.certificate.path}`);
  return {
    name: plan.name,
    dryRun: false,
    steps,
    transcript: plan.transcript,
    rootCertificate: plan.root.certificate.path,
    intermediateCertificate: plan.online?.intermediate?.output ?? null,
    keys: run.keys,
    durationMs,
  };
}

class CeremonyRun {
  readonly keys: { token: string; label: string; id: string; keyType: string }[] = [];
  readonly outputs: [string, string][] = [];
  readonly #plan: CeremonyPlan;
  readonly #context: CeremonyContext;
  readonly #steps: readonly string[];
  readonly #logger: Logger;
  #step = 0;
  #rootPin: Secret | null = null;
  #onlinePin: Secret | null = null;
  #root: HsmToken | null = null;
  #online: HsmToken | null = null;
  #transcript: TranscriptWriter | null = null;
  #rootSigner: HsmSigner | null = null;

  constructor(plan: CeremonyPlan, context: CeremonyContext, steps: readonly string[]) {
    this.#plan = plan;
    this.#context = context;
    this.#steps = steps;
    this.#logger = context.logger ?? silentLogger;
  }

  /** Checks everything that can be checked without writing. */
  async preflight(): Promise<void> {
    const plan = this.#plan;
    const print = this.#context.print;
    print('preflight: checking tokens, shares, PINs and key labels (nothing is written)');
    const tokens = listTokens(plan.modulePath);
    const initialised = (label: string): boolean => tokens.some((t) => t.initialized && t.label === label);
    const checkToken = (label: string, initialize: boolean, role: string): void => {
      if (initialize && initialised(label)) {
        throw preflightError('ceremony.token_exists', `the ${role} token "${label}" already exists; the plan says to initialise it, and a ceremony never re-initialises a token`);
      }
      if (!initialize && !initialised(label)) {
        throw preflightError('ceremony.token_missing', `no ${role} token labelled "${label}" (present: ${tokens.filter((t) => t.initialized).map((t) => `"${t.label}"`).join(', ') || 'none'})`);
      }
    };
    checkToken(plan.root.tokenLabel, plan.root.initialize, 'root');
    if (plan.online !== undefined) checkToken(plan.online.tokenLabel, plan.online.initialize, 'online');
    if ((plan.root.initialize || plan.online?.initialize === true) && !tokens.some((t) => !t.initialized)) {
      throw preflightError('ceremony.no_free_slot', 'the plan initialises a token, but no slot holds a free token');
    }

    if (!plan.root.initialize) {
      // Shares are combined and checked in memory: a short or wrong quorum never reaches C_Login.
      const shares = [];
      for (const officer of plan.root.officers) {
        const text = await this.#readSecret(officer.share, `root PIN share of ${officer.name}`);
        try {
          shares.push(text.reveal((value) => parseShare(value.trim(), `the share of ${officer.name} (${text.source})`)));
        } finally {
          text.dispose();
        }
      }
      const combined = await combineShares(shares);
      shares.forEach((share) => {
        share.dispose();
      });
      const { userPin, soPin } = rootPins(combined);
      combined.dispose();
      soPin.dispose();
      this.#rootPin = userPin;
      print(`  quorum met: shares of ${plan.root.officers.map((o) => o.name).join(', ')} combine to the root PIN`);
      this.#root = await this.#open(plan.root.tokenLabel, this.#rootPin);
      await this.#checkKey(this.#root, plan.root.key, plan.root.key.create);
      if (plan.rootRenewal !== undefined) await this.#checkKey(this.#root, plan.rootRenewal.key, true);
    }
    if (plan.online !== undefined && !plan.online.initialize) {
      this.#onlinePin = await this.#readSecret(plan.online.pin, 'online token user PIN');
      this.#online = await this.#open(plan.online.tokenLabel, this.#onlinePin);
      for (const key of [plan.online.intermediate?.key, plan.online.tokenSigning, plan.online.audit]) {
        if (key !== undefined) await this.#checkKey(this.#online, key, true);
      }
    }
    print('preflight: ok');
  }

  async execute(): Promise<void> {
    const plan = this.#plan;
    const { clock } = this.#context;
    await mkdir(plan.baseDir, { recursive: true, mode: 0o700 });
    this.#transcript = await TranscriptWriter.create(plan.transcript, clock, {
      ceremony: plan.name,
      planSha256: plan.planSha256,
      plan: plan.planPath,
      trustDomain: plan.trustDomain,
      officers: plan.root.officers.map((o) => o.name),
      quorum: plan.root.quorum ?? null,
    });
    this.outputs.push(['transcript', plan.transcript]);
    try {
      await this.#executeSteps();
    } catch (error) {
      const failure = error instanceof BrokerError ? { code: error.code, message: error.publicMessage } : { code: 'internal', message: 'internal error' };
      this.#logger.error({ error: error instanceof BrokerError ? error.toLogObject() : String(error) }, 'ceremony step failed');
      await this.#transcript.append('failed', { step: this.#step, ...failure });
      if (this.#rootSigner !== null) await this.#signTranscript();
      else await this.#transcript.close();
      throw error;
    }
  }

  async #executeSteps(): Promise<void> {
    const plan = this.#plan;
    const transcript = this.#requireTranscript();
    const { clock, random } = this.#context;
    const now = clock.now();

    // Root token.
    if (plan.root.initialize) {
      this.#begin();
      const rootSecret = Secret.from(random.bytes(2 * PIN_BYTES), 'generated');
      const { userPin, soPin } = rootPins(rootSecret);
      const serial = initToken({ modulePath: plan.modulePath, label: plan.root.tokenLabel, soPin, userPin }).serialNumber;
      soPin.dispose();
      const quorum = plan.root.quorum ?? { shares: 1, threshold: 1 };
      const shares = await splitSecret(rootSecret, quorum, random);
      rootSecret.dispose();
      for (const [index, officer] of plan.root.officers.entries()) {
        const share = shares[index];
        if (!('file' in officer.share) || share === undefined) throw new BrokerError('internal', { code: 'ceremony.share_file', publicMessage: 'a share needs a file' });
        await writeShareFile(officer.share.file, share);
        this.outputs.push([`share of ${officer.name}`, officer.share.file]);
      }
      this.#rootPin = userPin;
      await transcript.append('root-token-initialized', {
        token: plan.root.tokenLabel,
        serial,
        quorum,
        shareFiles: plan.root.officers.map((o) => ({ officer: o.name, file: 'file' in o.share ? o.share.file : null })),
      });
      this.#done(`root token "${plan.root.tokenLabel}" initialised (serial ${serial}); ${quorum.shares} share file(s) written, ${quorum.threshold} needed`);
      this.#root = await this.#open(plan.root.tokenLabel, userPin);
    } else {
      this.#begin();
      await transcript.append('quorum-met', { token: plan.root.tokenLabel, officers: plan.root.officers.map((o) => o.name) });
      this.#done(`logged in to root token "${plan.root.tokenLabel}" with the shares of ${plan.root.officers.map((o) => o.name).join(', ')}`);
    }
    const root = this.#requireToken(this.#root);

    // Root key.
    this.#begin();
    const rootKey = plan.root.key.create ? await root.generateKeyPair({ label: plan.root.key.label, keyType: plan.root.key.keyType }) : await root.findKey(plan.root.key.label);
    await this.#recordKey(root, rootKey, 'root', plan.root.key.create);
    const rootSigner = await HsmSigner.create(root, plan.root.key.label, plan.root.key.keyType);
    this.#rootSigner = rootSigner;

    // Root certificate.
    this.#begin();
    let rootCertificate: x509.X509Certificate;
    if (plan.root.certificate.create) {
      rootCertificate = await createRootCertificate({
        signer: rootSigner,
        subject: plan.root.certificate.subject,
        notBefore: now,
        notAfter: new Date(now.getTime() + plan.root.certificate.validityMs),
        random,
      });
      await this.#writeCertificate(plan.root.certificate.path, rootCertificate, 'root certificate');
    } else {
      rootCertificate = plan.root.certificate.existing;
      if (!samePublicKey(rootCertificate, rootSigner.publicKey)) {
        throw new BrokerError('conflict', {
          code: 'ceremony.root_mismatch',
          publicMessage: `the root certificate ${plan.root.certificate.path} does not belong to key "${plan.root.key.label}"`,
        });
      }
    }
    await transcript.append('certificate', { role: 'root', created: plan.root.certificate.create, ...describeCertificate(rootCertificate), path: plan.root.certificate.path });
    this.#done(`root certificate ${fingerprint(rootCertificate).slice(0, 16)}… valid until ${rootCertificate.notAfter.toISOString()}`);

    if (plan.rootRenewal !== undefined) await this.#renewRoot(root, rootSigner, rootCertificate, plan.rootRenewal);

    // Online token and its keys.
    const online = plan.online;
    let intermediateCertificate: x509.X509Certificate | null = null;
    if (online !== undefined) {
      this.#begin();
      if (online.initialize) {
        const userPin = Secret.from(random.bytes(PIN_BYTES).toString('hex'), 'generated');
        const soPin = Secret.from(random.bytes(PIN_BYTES).toString('hex'), 'generated');
        const serial = initToken({ modulePath: plan.modulePath, label: online.tokenLabel, soPin, userPin }).serialNumber;
        if ('file' in online.pin) await writeNewFile(online.pin.file, userPin.reveal((v) => `${v}\n`), 0o600, 'online token PIN file');
        if (online.soPin !== undefined && 'file' in online.soPin) await writeNewFile(online.soPin.file, soPin.reveal((v) => `${v}\n`), 0o600, 'online token SO PIN file');
        soPin.dispose();
        this.#onlinePin = userPin;
        this.#online = await this.#open(online.tokenLabel, userPin);
        await transcript.append('online-token-initialized', { token: online.tokenLabel, serial, pinFile: 'file' in online.pin ? online.pin.file : null });
        this.#done(`online token "${online.tokenLabel}" initialised (serial ${serial}); PINs written to new 0600 files`);
      } else {
        await transcript.append('online-token-opened', { token: online.tokenLabel });
        this.#done(`logged in to online token "${online.tokenLabel}"`);
      }
      const onlineToken = this.#requireToken(this.#online);

      if (online.intermediate !== undefined) {
        this.#begin();
        const info = await onlineToken.generateKeyPair({ label: online.intermediate.key.label, keyType: online.intermediate.key.keyType });
        await this.#recordKey(onlineToken, info, 'intermediate', true);
        this.#begin();
        if (info.publicKey === null) throw new BrokerError('internal', { code: 'ceremony.no_public_key', publicMessage: 'the new key has no public key' });
        const intermediate = await createIntermediateCertificate({
          issuerSigner: rootSigner,
          issuerCertificate: rootCertificate,
          publicKey: info.publicKey,
          subject: online.intermediate.subject,
          trustDomain: plan.trustDomain,
          notBefore: now,
          notAfter: new Date(now.getTime() + online.intermediate.validityMs),
          random,
        });
        intermediateCertificate = intermediate;
        await this.#writeCertificate(online.intermediate.output, intermediate, 'intermediate certificate');
        await transcript.append('certificate', { role: 'intermediate', created: true, ...describeCertificate(intermediate), path: online.intermediate.output });
        this.#done(`intermediate certificate ${fingerprint(intermediate).slice(0, 16)}… valid until ${intermediate.notAfter.toISOString()}`);
      }
      for (const [role, key] of [
        ['token-signing', online.tokenSigning],
        ['audit', online.audit],
      ] as const) {
        if (key === undefined) continue;
        this.#begin();
        const info = await onlineToken.generateKeyPair({ label: key.label, keyType: key.keyType });
        if (key.publicKeyOutput !== undefined && info.publicKey !== null) {
          await writeNewFile(key.publicKeyOutput, info.publicKey.export({ format: 'pem', type: 'spki' }).toString(), 0o644, `${role} public key`);
          this.outputs.push([`${role} public key`, key.publicKeyOutput]);
        }
        await this.#recordKey(onlineToken, info, role, true);
      }
    }

    // CRL.
    if (plan.crl !== undefined) {
      this.#begin();
      const crl = await buildCrl({
        issuerSigner: rootSigner,
        issuerCertificate: rootCertificate,
        crlNumber: plan.crl.number,
        thisUpdate: now,
        nextUpdate: new Date(now.getTime() + plan.crl.nextUpdateMs),
        entries: [],
      });
      await writeNewFile(plan.crl.output, `${crl.toString('pem')}\n`, 0o644, 'root CRL');
      this.outputs.push(['root CRL', plan.crl.output]);
      await transcript.append('crl', {
        number: plan.crl.number.toString(),
        thisUpdate: crl.thisUpdate.toISOString(),
        nextUpdate: crl.nextUpdate?.toISOString() ?? null,
        sha256: createHash('sha256').update(new Uint8Array(crl.rawData)).digest('hex'),
        path: plan.crl.output,
      });
      this.#done(`root CRL number ${plan.crl.number} signed`);
    }

    // Chain and transcript signature.
    this.#begin();
    if (intermediateCertificate !== null) {
      await verifyChain([intermediateCertificate, rootCertificate], [rootCertificate], clock.now());
    } else {
      await verifyChain([rootCertificate], [rootCertificate], clock.now());
    }
    await transcript.append('chain-verified', { chain: [intermediateCertificate, rootCertificate].filter((c) => c !== null).map(fingerprint) });
    await this.#signTranscript();
    this.#done(`chain verified; transcript signed with root key "${plan.root.key.label}"`);
  }

  /**
   * A new root key and certificate beside the old root, and the two cross certificates, each
   * checked as peers of either root will check them before the transcript records it.
   */
  async #renewRoot(root: HsmToken, oldSigner: HsmSigner, oldRoot: x509.X509Certificate, renewal: NonNullable<CeremonyPlan['rootRenewal']>): Promise<void> {
    const transcript = this.#requireTranscript();
    const { clock, random } = this.#context;
    const now = clock.now();
    this.#begin();
    const info = await root.generateKeyPair({ label: renewal.key.label, keyType: renewal.key.keyType });
    await this.#recordKey(root, info, 'new root', true);
    const newSigner = await HsmSigner.create(root, renewal.key.label, renewal.key.keyType);

    this.#begin();
    const newRoot = await createRootCertificate({ signer: newSigner, subject: oldRoot.subject, notBefore: now, notAfter: new Date(now.getTime() + renewal.validityMs), random });
    if (!Buffer.from(newRoot.subjectName.toArrayBuffer()).equals(Buffer.from(oldRoot.subjectName.toArrayBuffer()))) {
      throw new BrokerError('conflict', { code: 'ceremony.root_subject', publicMessage: `the old root's subject ${oldRoot.subject} does not re-encode byte for byte; it cannot be renewed under the same name` });
    }
    await this.#writeCertificate(renewal.certificate, newRoot, 'new root certificate');
    await transcript.append('certificate', { role: 'new root', created: true, ...describeCertificate(newRoot), path: renewal.certificate });
    this.#done(`new root certificate ${fingerprint(newRoot).slice(0, 16)}… valid until ${newRoot.notAfter.toISOString()}`);

    this.#begin();
    // Both cross certificates end with the old root: no chain through them outlives it.
    const notAfter = new Date(Math.min(oldRoot.notAfter.getTime(), newRoot.notAfter.getTime()));
    const newByOld = await createCrossCertificate({ issuerSigner: oldSigner, issuerCertificate: oldRoot, subjectCertificate: newRoot, notBefore: now, notAfter, random });
    const oldByNew = await createCrossCertificate({ issuerSigner: newSigner, issuerCertificate: newRoot, subjectCertificate: oldRoot, notBefore: now, notAfter, random });
    await verifyChain([newRoot, newByOld, oldRoot], [oldRoot], now);
    await verifyChain([oldRoot, oldByNew, newRoot], [newRoot], now);
    for (const [role, certificate, path] of [
      ['cross: new root by old', newByOld, renewal.newSignedByOld],
      ['cross: old root by new', oldByNew, renewal.oldSignedByNew],
    ] as const) {
      await this.#writeCertificate(path, certificate, `${role} certificate`);
      await transcript.append('certificate', { role, created: true, ...describeCertificate(certificate), path });
    }
    this.#done(`cross certificates ${fingerprint(newByOld).slice(0, 16)}… (new by old) and ${fingerprint(oldByNew).slice(0, 16)}… (old by new) valid until ${notAfter.toISOString()}`);
  }

  async close(): Promise<void> {
    this.#rootPin?.dispose();
    this.#onlinePin?.dispose();
    await this.#root?.close();
    await this.#online?.close();
  }

  async #signTranscript(): Promise<void> {
    const signer = this.#rootSigner;
    const transcript = this.#requireTranscript();
    if (signer === null) return;
    await transcript.sign(signer, { token: this.#plan.root.tokenLabel, label: signer.keyLabel, algorithm: signer.algorithm });
  }

  #begin(): void {
    this.#step++;
  }

  #done(message: string): void {
    this.#context.print(`[${Math.min(this.#step, this.#steps.length)}/${this.#steps.length}] ${message}`);
  }

  #open(label: string, pin: Secret): Promise<HsmToken> {
    return HsmToken.open({ modulePath: this.#plan.modulePath, tokenLabel: label, pin, sessions: 2, random: this.#context.random, logger: this.#logger });
  }

  async #checkKey(token: HsmToken, key: PlannedKey, mustBeAbsent: boolean): Promise<void> {
    let existing: HsmKeyInfo | null = null;
    try {
      existing = await token.findKey(key.label);
    } catch (error) {
      if (!(error instanceof BrokerError && error.code === 'hsm.key_not_found')) throw error;
    }
    if (mustBeAbsent && existing !== null) {
      throw preflightError('ceremony.key_exists', `a key labelled "${key.label}" already exists on token "${token.label}"; a ceremony never overwrites a key: choose a new label`);
    }
    if (!mustBeAbsent && existing === null) {
      throw preflightError('ceremony.key_missing', `no key labelled "${key.label}" on token "${token.label}"`);
    }
    if (!mustBeAbsent && existing !== null && existing.keyType !== key.keyType) {
      throw preflightError('ceremony.key_type', `key "${key.label}" on token "${token.label}" is ${existing.keyType ?? 'of another type'}, the plan says ${key.keyType}`);
    }
  }

  async #recordKey(token: HsmToken, info: HsmKeyInfo, role: string, created: boolean): Promise<void> {
    const entry = { token: token.label, label: info.label, id: info.id, keyType: info.keyType ?? 'other' };
    this.keys.push(entry);
    await this.#requireTranscript().append(created ? 'key-generated' : 'key-used', {
      role,
      ...entry,
      spkiSha256: info.spkiSha256,
      sensitive: info.sensitive,
      extractable: info.extractable,
    });
    this.#done(`${role} key "${info.label}" ${created ? 'generated' : 'found'} on "${token.label}" (${info.keyType ?? '?'}, id ${info.id}, non-extractable)`);
  }

  async #writeCertificate(path: string, certificate: x509.X509Certificate, what: string): Promise<void> {
    await writeNewFile(path, `${certificate.toString('pem')}\n`, 0o644, what);
    this.outputs.push([what, path]);
  }

  #readSecret(source: SecretSource, label: string): Promise<Secret> {
    return readSecret(source, { label, ...(this.#context.prompt === undefined ? {} : { prompt: this.#context.prompt }) });
  }

  #requireTranscript(): TranscriptWriter {
    if (this.#transcript === null) throw new BrokerError('internal', { code: 'ceremony.state', publicMessage: 'internal error' });
    return this.#transcript;
  }

  #requireToken(token: HsmToken | null): HsmToken {
    if (token === null) throw new BrokerError('internal', { code: 'ceremony.state', publicMessage: 'internal error' });
    return token;
  }
}

function preflightError(code: string, message: string): BrokerError {
  return new BrokerError('conflict', { code, publicMessage: message });
}

function fingerprint(certificate: x509.X509Certificate): string {
  return createHash('sha256').update(new Uint8Array(certificate.rawData)).digest('hex');
}

function describeCertificate(certificate: x509.X509Certificate): Record<string, unknown> {
  return {
    subject: certificate.subject,
    issuer: certificate.issuer,
    serialNumber: certificate.serialNumber,
    notBefore: certificate.notBefore.toISOString(),
    notAfter: certificate.notAfter.toISOString(),
    sha256: fingerprint(certificate),
  };
}

function samePublicKey(certificate: x509.X509Certificate, publicKey: KeyObject): boolean {
  const spki = Buffer.from(certificate.publicKey.rawData);
  return spki.equals(publicKey.export({ format: 'der', type: 'spki' }));
}
