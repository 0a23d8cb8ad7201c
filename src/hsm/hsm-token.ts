/**
 * One logged-in PKCS#11 token: its session pool, its keys, and signing with them.
 *
 * - The token is found by label; the user PIN comes as a {@link Secret} and is used for
 *   C_Login only. A PIN error is fatal and never retried.
 * - Keys are created on the token as sensitive, non-extractable token objects and found by
 *   label; a label that already exists is never overwritten.
 * - Signing borrows a session from the pool. Cheap mechanisms (P-256) run synchronously in
 *   small time-boxed batches, so the event loop keeps turning; slow ones run on libuv's thread
 *   pool through pkcs11js's async calls, several sessions at once.
 * - A lost session or device turns the token `reconnecting`: calls fail fast with
 *   `unavailable`, and the token reopens sessions and logs in again with exponential backoff.
 */
import { EventEmitter } from 'node:events';
import { createHash, type KeyObject } from 'node:crypto';
import pkcs11js from 'pkcs11js';
import {
  BrokerError,
  KEY_TYPES,
  silentLogger,
  systemRandom,
  type KeyType,
  type Logger,
  type RandomSource,
  type Secret,
} from '../core/index.js';
import { isSessionLost, toHsmError } from './hsm-error.js';
import { KEY_SPECS, keyTypeFromAttributes, publicKeyFromAttributes } from './key-spec.js';
import { Pkcs11Library, resolveModulePath } from './pkcs11-library.js';
import { SessionPool, type SessionHandle } from './session-pool.js';
import { findTokenByLabel } from './slots.js';
import { SyncSignQueue } from './sync-sign-queue.js';

/**
 * How signatures are computed: `sync` on the event loop in time-boxed batches, `async` on the
 * thread pool, `auto` by key type (sync for P-256, whose ~40 µs signature costs less than the
 * thread hand-off; async for P-384, RSA and Ed25519, which gain from both cores).
 */
export type SignMode = 'auto' | 'sync' | 'async';

/** Key types signed synchronously in `auto` mode (see `npm run bench -- hsm`). */
export const SYNC_KEY_TYPES: ReadonlySet<KeyType> = new Set<KeyType>(['P-256']);

/** Timer seam for reconnect backoff; tests replace it to drive reconnection without sleeping. */
export type SetTimer = (callback: () => void, delayMs: number) => { cancel(): void };

const defaultSetTimer: SetTimer = (callback, delayMs) => {
  const timer = setTimeout(callback, delayMs);
  timer.unref();
  return {
    cancel: () => {
      clearTimeout(timer);
    },
  };
};

/** Test seams. Never set in production configuration. */
export interface HsmTestHooks {
  /** Called with every raw signature before verification; may return a corrupted copy. */
  readonly afterSign?: (signature: Buffer, keyLabel: string) => Buffer;
}

/**
 * Told of every signature an {@link HsmSigner} returns, for metrics. Kept here so that src/hsm
 * knows nothing of who listens (the server feeds a Prometheus histogram). It runs on the
 * signing path: it must be cheap (no I/O) and must not throw.
 */
export interface HsmSignObserver {
  /**
   * A verified signature with the key `keyLabel` (never the PIN or the data) took `seconds`:
   * from the call until it was verified, queueing for a session and a retry included.
   */
  signed(keyLabel: string, seconds: number): void;
}

/** Options of {@link HsmToken.open}. */
export interface HsmTokenOptions {
  /** Path of the PKCS#11 module; absent = search the usual SoftHSM 2 locations. */
  readonly modulePath?: string | undefined;
  /** Label of the token to use (never a slot index). */
  readonly tokenLabel: string;
  /** The user PIN. The token keeps it to log in again after a reconnect. */
  readonly pin: Secret;
  /** Sessions in the pool (default 4; size UV_THREADPOOL_SIZE to at least this). */
  readonly sessions?: number;
  /** Default `auto`. */
  readonly signMode?: SignMode;
  /** Verify every signature in software before returning it (default true; keep it on). */
  readonly verifyAfterSign?: boolean;
  /** Source of CKA_ID bytes for new keys (default: the OS CSPRNG). */
  readonly random?: RandomSource;
  readonly logger?: Logger;
  /** First reconnect delay in ms (default 100), doubled per failure up to maxReconnectDelayMs. */
  readonly reconnectDelayMs?: number;
  /** Reconnect backoff cap in ms (default 10,000). */
  readonly maxReconnectDelayMs?: number;
  readonly setTimer?: SetTimer;
  readonly testHooks?: HsmTestHooks;
  /** Told of every signature's latency (metrics); default none. */
  readonly signObserver?: HsmSignObserver | undefined;
}

/** What is known of a key on the token (never its private value). */
export interface HsmKeyInfo {
  readonly label: string;
  /** CKA_ID, hex. */
  readonly id: string;
  /** null when the key is of a type credbroker does not use. */
  readonly keyType: KeyType | null;
  readonly sensitive: boolean;
  readonly extractable: boolean;
  readonly alwaysSensitive: boolean;
  readonly neverExtractable: boolean;
  /** null when no matching public key object was found. */
  readonly publicKey: KeyObject | null;
  /** SHA-256 of the DER SubjectPublicKeyInfo, hex; null without a public key. */
  readonly spkiSha256: string | null;
}

/** Counters of the signing path, for metrics and the self-test. */
export interface HsmStats {
  /** Signatures returned to callers. */
  signatures: number;
  /** Signatures the software verification caught as invalid. */
  invalidSignatures: number;
  /** Signing calls retried after an invalid signature. */
  retries: number;
  /** Signing calls that failed after the retry. */
  failedSignatures: number;
  /** Times the token was found lost. */
  sessionLosses: number;
  /** Successful reconnections. */
  reconnects: number;
}

/** State of the token's connection. */
export type HsmState = 'open' | 'reconnecting' | 'failed' | 'closed';

interface KeyHandles {
  readonly privateKey: pkcs11js.Handle;
  readonly publicKey: pkcs11js.Handle | null;
}

/** Events: `lost` (error), `reconnected` (), `failed` (error): for health checks and tests. */
export class HsmToken extends EventEmitter {
  readonly label: string;
  readonly modulePath: string;
  readonly stats: HsmStats = { signatures: 0, invalidSignatures: 0, retries: 0, failedSignatures: 0, sessionLosses: 0, reconnects: 0 };
  readonly verifyAfterSign: boolean;
  readonly testHooks: HsmTestHooks;
  /** Told of every signature's latency by the signers of this token; null when nobody listens. */
  readonly signObserver: HsmSignObserver | null;
  readonly #library: Pkcs11Library;
  readonly #pin: Secret;
  readonly #sessionCount: number;
  readonly #signMode: SignMode;
  readonly #random: RandomSource;
  readonly #logger: Logger;
  readonly #setTimer: SetTimer;
  readonly #reconnectDelayMs: number;
  readonly #maxReconnectDelayMs: number;
  #slot: pkcs11js.Handle;
  #sessions: SessionHandle[] = [];
  #pool: SessionPool;
  #syncQueue: SyncSignQueue;
  #state: HsmState = 'open';
  #handleCache = new Map<string, KeyHandles>();
  #reconnectTimer: { cancel(): void } | null = null;
  #nextDelayMs: number;
  #lastError: BrokerError | null = null;

  private constructor(library: Pkcs11Library, slot: pkcs11js.Handle, sessions: SessionHandle[], options: HsmTokenOptions) {
    super();
    this.label = options.tokenLabel;
    this.modulePath = library.path;
    this.#library = library;
    this.#slot = slot;
    this.#sessions = sessions;
    this.#pool = new SessionPool(sessions);
    this.#syncQueue = new SyncSignQueue(this.#pool);
    this.#pin = options.pin;
    this.#sessionCount = sessions.length;
    this.#signMode = options.signMode ?? 'auto';
    this.verifyAfterSign = options.verifyAfterSign ?? true;
    this.#random = options.random ?? systemRandom;
    this.#logger = options.logger ?? silentLogger;
    this.#setTimer = options.setTimer ?? defaultSetTimer;
    this.#reconnectDelayMs = options.reconnectDelayMs ?? 100;
    this.#maxReconnectDelayMs = options.maxReconnectDelayMs ?? 10_000;
    this.#nextDelayMs = this.#reconnectDelayMs;
    this.testHooks = options.testHooks ?? {};
    this.signObserver = options.signObserver ?? null;
    const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    if (this.#signMode !== 'sync' && sessions.length > threads) {
      this.#logger.warn(
        { token: this.label, sessions: sessions.length, uvThreadpoolSize: threads },
        'more HSM sessions than libuv threads: async signing cannot use them all; raise UV_THREADPOOL_SIZE',
      );
    }
  }

  /**
   * Loads the module, finds the token by label, opens the session pool and logs in.
   * @throws BrokerError `hsm.module_not_found`, `hsm.token_not_found`, `hsm.pin_incorrect`,
   *   `hsm.pin_locked`, `hsm.user_pin_not_initialized`, `hsm.session_lost`
   */
  static open(options: HsmTokenOptions): Promise<HsmToken> {
    try {
      const sessions = options.sessions ?? 4;
      if (!Number.isInteger(sessions) || sessions < 1 || sessions > 64) {
        throw new RangeError(`hsm sessions must be an integer from 1 to 64, got ${sessions}`);
      }
      const library = Pkcs11Library.acquire(resolveModulePath(options.modulePath));
      try {
        const { slot, sessions: handles } = connect(library.api, options.tokenLabel, options.pin, sessions);
        return Promise.resolve(new HsmToken(library, slot, handles, options));
      } catch (error) {
        library.release();
        throw error;
      }
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** `open` while signing works; `reconnecting` after a loss; `failed` when a PIN error stopped reconnection. */
  get state(): HsmState {
    return this.#state;
  }

  /** The error that made the token leave `open`, if any. */
  get lastError(): BrokerError | null {
    return this.#lastError;
  }

  /** Pool size and use, for metrics. */
  get poolUsage(): { size: number; inUse: number; waiting: number } {
    return { size: this.#pool.size, inUse: this.#pool.inUse, waiting: this.#pool.waiting };
  }

  /** The sign mode a key of this type uses. */
  signModeFor(keyType: KeyType): 'sync' | 'async' {
    if (this.#signMode !== 'auto') return this.#signMode;
    return SYNC_KEY_TYPES.has(keyType) ? 'sync' : 'async';
  }

  /**
   * Key types whose generation mechanism the token supports.
   */
  supportedKeyTypes(): KeyType[] {
    const mechanisms = new Set(this.#call('list mechanisms', undefined, () => this.#library.api.C_GetMechanismList(this.#slot)));
    return KEY_TYPES.filter((keyType) => mechanisms.has(KEY_SPECS[keyType].generateMechanism) && mechanisms.has(KEY_SPECS[keyType].signMechanism));
  }

  /**
   * Generates a key pair on the token: private key CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE true,
   * CKA_EXTRACTABLE false, sign-only; a random 16-byte CKA_ID shared with the public key.
   * @throws BrokerError `hsm.key_exists` (conflict) if any object already has the label;
   *   `hsm.mechanism_unsupported` naming the mechanism; `hsm.invalid_label`
   */
  async generateKeyPair(request: { label: string; keyType: KeyType }): Promise<HsmKeyInfo> {
    const { label, keyType } = request;
    checkLabel(label);
    const spec = KEY_SPECS[keyType];
    const api = this.#library.api;
    const mechanisms = new Set(this.#call('list mechanisms', label, () => api.C_GetMechanismList(this.#slot)));
    for (const [mechanism, name] of [
      [spec.generateMechanism, spec.generateMechanismName],
      [spec.signMechanism, spec.signMechanismName],
    ] as const) {
      if (!mechanisms.has(mechanism)) {
        throw new BrokerError('invalid', {
          code: 'hsm.mechanism_unsupported',
          publicMessage: `token "${this.label}" does not support ${name}, which ${keyType} keys need; choose another key type`,
          retryable: false,
        });
      }
    }
    const id = this.#random.bytes(16);
    const publicTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: false },
      { type: pkcs11js.CKA_VERIFY, value: true },
      { type: pkcs11js.CKA_ENCRYPT, value: false },
      { type: pkcs11js.CKA_WRAP, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
      ...spec.publicTemplate,
    ];
    const privateTemplate: pkcs11js.Template = [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_TOKEN, value: true },
      { type: pkcs11js.CKA_PRIVATE, value: true },
      { type: pkcs11js.CKA_SENSITIVE, value: true },
      { type: pkcs11js.CKA_EXTRACTABLE, value: false },
      { type: pkcs11js.CKA_SIGN, value: true },
      { type: pkcs11js.CKA_DECRYPT, value: false },
      { type: pkcs11js.CKA_UNWRAP, value: false },
      { type: pkcs11js.CKA_DERIVE, value: false },
      { type: pkcs11js.CKA_LABEL, value: label },
      { type: pkcs11js.CKA_ID, value: id },
    ];
    return this.#use('generate key', label, async (session) => {
      // No overwrite, ever: any object carrying the label blocks creation.
      if (this.#findObjects(session, [{ type: pkcs11js.CKA_LABEL, value: label }]).length > 0) {
        throw keyExists(label, this.label);
      }
      const pair = await api.C_GenerateKeyPairAsync(session, { mechanism: spec.generateMechanism }, publicTemplate, privateTemplate);
      // Another process may have created the same label meanwhile: keep the older key only.
      const privateKeys = this.#findObjects(session, [
        { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
        { type: pkcs11js.CKA_LABEL, value: label },
      ]);
      if (privateKeys.length !== 1) {
        api.C_DestroyObject(session, pair.privateKey);
        api.C_DestroyObject(session, pair.publicKey);
        throw keyExists(label, this.label);
      }
      this.#logger.info({ token: this.label, key: label, keyType, id: id.toString('hex') }, 'generated key pair on the HSM');
      return this.#describe(session, pair.privateKey, pair.publicKey);
    });
  }

  /** Every private key on the token, with its protection attributes and public key. */
  listKeys(): Promise<HsmKeyInfo[]> {
    return this.#use('list keys', undefined, (session) => {
      const handles = this.#findObjects(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }]);
      return handles
        .map((handle) => this.#describe(session, handle, this.#publicPartner(session, handle)))
        .sort((a, b) => a.label.localeCompare(b.label));
    });
  }

  /**
   * Finds the key with this label and describes it.
   * @throws BrokerError `hsm.key_not_found` naming the label and the token
   */
  findKey(label: string): Promise<HsmKeyInfo> {
    return this.#use('find key', label, (session) => {
      const handles = this.#keyHandlesIn(session, label);
      return this.#describe(session, handles.privateKey, handles.publicKey);
    });
  }

  /**
   * Signs the message with the key `label` and returns the raw signature (ECDSA `r || s`).
   * Does not verify: {@link HsmSigner} does, with the public key it holds.
   * @throws BrokerError unavailable while reconnecting or when the session is lost
   */
  async signRaw(label: string, keyType: KeyType, data: Uint8Array): Promise<Buffer> {
    this.#checkOpen();
    const spec = KEY_SPECS[keyType];
    const input = spec.prepare(data);
    const api = this.#library.api;
    const mechanism = { mechanism: spec.signMechanism };
    try {
      const privateKey = (await this.#keyHandles(label)).privateKey;
      if (this.signModeFor(keyType) === 'sync') {
        return await this.#syncQueue.run((session) => {
          api.C_SignInit(session, mechanism, privateKey);
          return api.C_Sign(session, input, Buffer.alloc(spec.signatureBytes));
        });
      }
      return await this.#pool.use(async (session) => {
        api.C_SignInit(session, mechanism, privateKey);
        return api.C_SignAsync(session, input, Buffer.alloc(spec.signatureBytes));
      });
    } catch (error) {
      throw this.#fail(error, 'sign', label);
    }
  }

  /**
   * Tries to reconnect at once (health checks and tests call it instead of waiting for the
   * backoff timer). Returns true when the token is open afterwards.
   */
  reconnectNow(): boolean {
    if (this.#state === 'reconnecting') {
      this.#reconnectTimer?.cancel();
      this.#reconnectTimer = null;
      this.#attemptReconnect();
    }
    return this.state === 'open';
  }

  /**
   * Marks the token lost as if the HSM had failed (test seam and for callers that detect a
   * loss by other means): pool closed, reconnection scheduled.
   */
  markLost(reason: string): void {
    this.#lost(
      new BrokerError('unavailable', {
        code: 'hsm.session_lost',
        publicMessage: `token "${this.label}" is not reachable; the broker reconnects with backoff, retry later`,
        logMessage: `token "${this.label}" marked lost: ${reason}`,
      }),
    );
  }

  /** Closes the sessions (which logs out) and releases the module. Idempotent. */
  close(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    this.#state = 'closed';
    this.#reconnectTimer?.cancel();
    this.#reconnectTimer = null;
    this.#pool.close(
      new BrokerError('unavailable', { code: 'hsm.closed', publicMessage: `token "${this.label}" was closed`, retryable: false }),
    );
    this.#closeSessions();
    this.#library.release();
    return Promise.resolve();
  }

  #checkOpen(): void {
    if (this.#state === 'open') return;
    if (this.#state === 'closed') {
      throw new BrokerError('unavailable', { code: 'hsm.closed', publicMessage: `token "${this.label}" was closed`, retryable: false });
    }
    // Callers get UNAVAILABLE whatever stopped the HSM (a token not found on a reconnect attempt,
    // a PIN refused): their request is fine and the broker is not. The cause stays in the log
    // message and in lastError.
    const cause = this.#lastError;
    throw new BrokerError('unavailable', {
      code: this.#state === 'failed' ? 'hsm.failed' : 'hsm.session_lost',
      publicMessage:
        this.#state === 'failed'
          ? `token "${this.label}" is unavailable and needs an operator; retry later`
          : `token "${this.label}" is reconnecting; retry later`,
      logMessage: `token "${this.label}" is ${this.#state}${cause === null ? '' : `: ${cause.logMessage}`}`,
      ...(cause === null ? {} : { cause }),
    });
  }

  async #keyHandles(label: string): Promise<KeyHandles> {
    const cached = this.#handleCache.get(label);
    if (cached !== undefined) return cached;
    const handles = await this.#use('find key', label, (session) => this.#keyHandlesIn(session, label));
    this.#handleCache.set(label, handles);
    return handles;
  }

  #keyHandlesIn(session: SessionHandle, label: string): KeyHandles {
    const privateKeys = this.#findObjects(session, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY },
      { type: pkcs11js.CKA_LABEL, value: label },
    ]);
    const privateKey = privateKeys[0];
    if (privateKey === undefined) {
      throw new BrokerError('not_found', {
        code: 'hsm.key_not_found',
        publicMessage: `no private key labelled "${label}" on token "${this.label}"; list keys with \`credbroker hsm keys\` or create it in a ceremony`,
        retryable: false,
      });
    }
    if (privateKeys.length > 1) {
      throw new BrokerError('conflict', {
        code: 'hsm.key_ambiguous',
        publicMessage: `${privateKeys.length} private keys are labelled "${label}" on token "${this.label}"; labels must be unique`,
        retryable: false,
      });
    }
    return { privateKey, publicKey: this.#publicPartner(session, privateKey) };
  }

  /** The public key object with the same CKA_ID (and label) as a private key. */
  #publicPartner(session: SessionHandle, privateKey: pkcs11js.Handle): pkcs11js.Handle | null {
    const api = this.#library.api;
    const [idAttribute, labelAttribute] = api.C_GetAttributeValue(session, privateKey, [{ type: pkcs11js.CKA_ID }, { type: pkcs11js.CKA_LABEL }]);
    const template: pkcs11js.Template = [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY }];
    if (idAttribute?.value instanceof Buffer) template.push({ type: pkcs11js.CKA_ID, value: idAttribute.value });
    if (labelAttribute?.value instanceof Buffer) template.push({ type: pkcs11js.CKA_LABEL, value: labelAttribute.value });
    return this.#findObjects(session, template)[0] ?? null;
  }

  #describe(session: SessionHandle, privateKey: pkcs11js.Handle, publicKeyHandle: pkcs11js.Handle | null): HsmKeyInfo {
    const api = this.#library.api;
    const attributes = api.C_GetAttributeValue(session, privateKey, [
      { type: pkcs11js.CKA_LABEL },
      { type: pkcs11js.CKA_ID },
      { type: pkcs11js.CKA_KEY_TYPE },
      { type: pkcs11js.CKA_SENSITIVE },
      { type: pkcs11js.CKA_EXTRACTABLE },
      { type: pkcs11js.CKA_ALWAYS_SENSITIVE },
      { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
    ]);
    const value = (index: number): Buffer => {
      const attributeValue = attributes[index]?.value;
      return attributeValue instanceof Buffer ? attributeValue : Buffer.alloc(0);
    };
    const bool = (index: number): boolean => value(index)[0] === 1;
    const ckKeyType = value(2).readUIntLE(0, Math.min(6, Math.max(1, value(2).length)));
    let publicKey: KeyObject | null = null;
    let keyType: KeyType | null = null;
    if (publicKeyHandle !== null) {
      const publicAttributes = readPublicAttributes(api, session, publicKeyHandle, ckKeyType);
      keyType = keyTypeFromAttributes(ckKeyType, publicAttributes.ecParams ?? null, publicAttributes.modulus ?? null);
      if (keyType !== null) {
        publicKey = publicKeyFromAttributes(keyType, {
          ...(publicAttributes.ecPoint === undefined ? {} : { ecPoint: publicAttributes.ecPoint }),
          ...(publicAttributes.modulus === undefined ? {} : { modulus: publicAttributes.modulus }),
          ...(publicAttributes.publicExponent === undefined ? {} : { publicExponent: publicAttributes.publicExponent }),
        });
      }
    }
    return {
      label: value(0).toString('utf8'),
      id: value(1).toString('hex'),
      keyType,
      sensitive: bool(3),
      extractable: bool(4),
      alwaysSensitive: bool(5),
      neverExtractable: bool(6),
      publicKey,
      spkiSha256: publicKey === null ? null : createHash('sha256').update(publicKey.export({ format: 'der', type: 'spki' })).digest('hex'),
    };
  }

  #findObjects(session: SessionHandle, template: pkcs11js.Template): pkcs11js.Handle[] {
    const api = this.#library.api;
    api.C_FindObjectsInit(session, template);
    try {
      const found: pkcs11js.Handle[] = [];
      for (;;) {
        const batch = api.C_FindObjects(session, 64);
        found.push(...batch);
        if (batch.length < 64) return found;
      }
    } finally {
      api.C_FindObjectsFinal(session);
    }
  }

  /** Runs `action` on a pooled session; PKCS#11 failures become named errors (and may start a reconnect). */
  async #use<T>(operation: string, key: string | undefined, action: (session: SessionHandle) => T | Promise<T>): Promise<T> {
    this.#checkOpen();
    try {
      return await this.#pool.use(action);
    } catch (error) {
      throw this.#fail(error, operation, key);
    }
  }

  #call<T>(operation: string, key: string | undefined, action: () => T): T {
    this.#checkOpen();
    try {
      return action();
    } catch (error) {
      throw this.#fail(error, operation, key);
    }
  }

  /** Names the error and starts reconnection when the session or device is lost. */
  #fail(error: unknown, operation: string, key: string | undefined): BrokerError {
    const named = toHsmError(error, { operation, token: this.label, ...(key === undefined ? {} : { key }) });
    if (named.code === 'hsm.session_lost' || isSessionLost(error)) this.#lost(named);
    return named;
  }

  #lost(error: BrokerError): void {
    if (this.#state !== 'open') return;
    this.#state = 'reconnecting';
    this.#lastError = error;
    this.stats.sessionLosses++;
    this.#pool.close(error);
    this.#logger.error({ token: this.label, error: error.toLogObject() }, 'HSM session lost; reconnecting with backoff');
    this.emit('lost', error);
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const delayMs = this.#nextDelayMs;
    this.#nextDelayMs = Math.min(this.#nextDelayMs * 2, this.#maxReconnectDelayMs);
    this.#reconnectTimer = this.#setTimer(() => {
      this.#reconnectTimer = null;
      this.#attemptReconnect();
    }, delayMs);
  }

  #attemptReconnect(): void {
    if (this.#state !== 'reconnecting') return;
    this.#closeSessions();
    try {
      const { slot, sessions } = connect(this.#library.api, this.label, this.#pin, this.#sessionCount);
      this.#slot = slot;
      this.#sessions = sessions;
      this.#pool = new SessionPool(sessions);
      this.#syncQueue = new SyncSignQueue(this.#pool);
      this.#handleCache = new Map();
      this.#state = 'open';
      this.#lastError = null;
      this.#nextDelayMs = this.#reconnectDelayMs;
      this.stats.reconnects++;
      this.#logger.info({ token: this.label }, 'HSM reconnected');
      this.emit('reconnected');
    } catch (error) {
      const named = toHsmError(error, { operation: 'reconnect', token: this.label });
      this.#lastError = named;
      if (named.code === 'hsm.token_not_found' && this.#library.reinitialize()) {
        // The module rescans its slots at the next attempt (a token that came back is seen then).
        this.#logger.warn({ token: this.label }, 'HSM token not found on reconnect; the PKCS#11 module was re-initialised to rescan its slots');
      }
      if (named.kind === 'unauthenticated') {
        // A PIN error would burn attempts on every retry: stop and wait for people.
        this.#state = 'failed';
        this.#logger.error({ token: this.label, error: named.toLogObject() }, 'HSM reconnect stopped: PIN refused');
        this.emit('failed', named);
        return;
      }
      this.#logger.warn({ token: this.label, error: named.toLogObject() }, 'HSM reconnect failed; retrying with backoff');
      this.#scheduleReconnect();
    }
  }

  #closeSessions(): void {
    for (const session of this.#sessions) {
      try {
        this.#library.api.C_CloseSession(session);
      } catch {
        // A session of a lost device is already gone.
      }
    }
    this.#sessions = [];
  }
}

/** Finds the token, opens `count` RW sessions and logs in. Cleans up on failure. */
function connect(api: pkcs11js.PKCS11, label: string, pin: Secret, count: number): { slot: pkcs11js.Handle; sessions: SessionHandle[] } {
  const { slot, summary } = findTokenByLabel(api, label);
  if (summary.userPinLocked) {
    // Checked before C_Login: a login attempt on a locked PIN tells us nothing new.
    throw toHsmError(Object.assign(new Error('CKR_PIN_LOCKED'), { code: pkcs11js.CKR_PIN_LOCKED }), { operation: 'login', token: label });
  }
  if (!summary.userPinInitialized) {
    throw new BrokerError('conflict', {
      code: 'hsm.user_pin_not_initialized',
      publicMessage: `token "${label}" has no user PIN yet: a security officer sets it (credbroker hsm init-token)`,
      retryable: false,
    });
  }
  const sessions: SessionHandle[] = [];
  try {
    for (let i = 0; i < count; i++) sessions.push(api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION));
    const first = sessions[0];
    if (first === undefined) throw new RangeError('no session opened');
    try {
      pin.reveal((value) => {
        api.C_Login(first, pkcs11js.CKU_USER, value);
      });
    } catch (error) {
      // Already logged in by another HsmToken of this process on the same token: fine.
      if (!(error instanceof Error && /CKR_USER_ALREADY_LOGGED_IN/.test(error.message))) throw error;
    }
    return { slot, sessions };
  } catch (error) {
    for (const session of sessions) {
      try {
        api.C_CloseSession(session);
      } catch {
        // best effort
      }
    }
    throw toHsmError(error, { operation: 'login', token: label });
  }
}

function readPublicAttributes(
  api: pkcs11js.PKCS11,
  session: SessionHandle,
  handle: pkcs11js.Handle,
  ckKeyType: number,
): { ecParams?: Buffer; ecPoint?: Buffer; modulus?: Buffer; publicExponent?: Buffer } {
  if (ckKeyType === pkcs11js.CKK_RSA) {
    const [modulus, exponent] = api.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
    return {
      ...(modulus?.value instanceof Buffer ? { modulus: modulus.value } : {}),
      ...(exponent?.value instanceof Buffer ? { publicExponent: exponent.value } : {}),
    };
  }
  const [params, point] = api.C_GetAttributeValue(session, handle, [{ type: pkcs11js.CKA_EC_PARAMS }, { type: pkcs11js.CKA_EC_POINT }]);
  return {
    ...(params?.value instanceof Buffer ? { ecParams: params.value } : {}),
    ...(point?.value instanceof Buffer ? { ecPoint: point.value } : {}),
  };
}

const LABEL = /^[\x21-\x7e](?:[\x20-\x7e]{0,62}[\x21-\x7e])?$/;

function checkLabel(label: string): void {
  if (!LABEL.test(label)) {
    throw new BrokerError('invalid', {
      code: 'hsm.invalid_label',
      publicMessage: `key label "${label}" is not 1 to 64 printable ASCII characters without leading or trailing spaces`,
      retryable: false,
    });
  }
}

function keyExists(label: string, token: string): BrokerError {
  return new BrokerError('conflict', {
    code: 'hsm.key_exists',
    publicMessage: `a key labelled "${label}" already exists on token "${token}"; credbroker never overwrites a key: choose a new label`,
    retryable: false,
  });
}
