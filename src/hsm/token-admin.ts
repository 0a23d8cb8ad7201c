/**
 * Token administration for `credbroker hsm`: listing tokens and initialising a new one.
 * PINs arrive as Secrets from secret sources (file, fd, prompt), never from argv.
 */
import pkcs11js from 'pkcs11js';
import { BrokerError, type Secret } from '../core/index.js';
import { toHsmError } from './hsm-error.js';
import { Pkcs11Library, resolveModulePath } from './pkcs11-library.js';
import { findTokenByLabel, listSlotTokens, type TokenSummary } from './slots.js';

/** Runs `action` with the module loaded, and releases it afterwards. */
export function withLibrary<T>(modulePath: string | undefined, action: (api: pkcs11js.PKCS11, path: string) => T): T {
  const library = Pkcs11Library.acquire(resolveModulePath(modulePath));
  try {
    return action(library.api, library.path);
  } finally {
    library.release();
  }
}

/** Every token present, initialised or not. */
export function listTokens(modulePath?: string): TokenSummary[] {
  return withLibrary(modulePath, (api) => listSlotTokens(api).map((token) => token.summary));
}

/** Options of {@link initToken}. */
export interface InitTokenOptions {
  readonly modulePath?: string | undefined;
  /** Label of the new token, 1 to 32 characters (the PKCS#11 limit). */
  readonly label: string;
  /** The security officer PIN set on the token. */
  readonly soPin: Secret;
  /** The user PIN the broker or ceremony will log in with. */
  readonly userPin: Secret;
}

/**
 * Initialises a free token with a label, an SO PIN and a user PIN. Never re-initialises a token
 * that is already in use.
 * @throws BrokerError `hsm.token_exists` when a token has the label, `hsm.no_free_slot`,
 *   `hsm.invalid_label`, `hsm.pin_invalid`
 */
export function initToken(options: InitTokenOptions): TokenSummary {
  const { label } = options;
  if (!/^[\x21-\x7e](?:[\x20-\x7e]{0,30}[\x21-\x7e])?$/.test(label)) {
    throw new BrokerError('invalid', {
      code: 'hsm.invalid_label',
      publicMessage: `token label "${label}" is not 1 to 32 printable ASCII characters without leading or trailing spaces`,
      retryable: false,
    });
  }
  return withLibrary(options.modulePath, (api) => {
    const tokens = listSlotTokens(api);
    if (tokens.some((token) => token.summary.initialized && token.summary.label === label)) {
      throw new BrokerError('conflict', {
        code: 'hsm.token_exists',
        publicMessage: `a token labelled "${label}" already exists; credbroker never re-initialises a token: choose a new label`,
        retryable: false,
      });
    }
    const free = tokens.find((token) => !token.summary.initialized);
    if (free === undefined) {
      throw new BrokerError('exhausted', {
        code: 'hsm.no_free_slot',
        publicMessage: 'no slot holds an uninitialised token; free one with the HSM vendor tools',
        retryable: false,
      });
    }
    const context = { operation: 'initialise token', token: label };
    try {
      options.soPin.reveal((soPin) => api.C_InitToken(free.slot, soPin, label));
    } catch (error) {
      throw toHsmError(error, context);
    }
    // Initialising moves the token to a new slot on SoftHSM: find it again by label.
    const { slot } = findTokenByLabel(api, label);
    let session: pkcs11js.Handle | null = null;
    try {
      session = api.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
      const opened = session;
      options.soPin.reveal((soPin) => {
        api.C_Login(opened, pkcs11js.CKU_SO, soPin);
      });
      options.userPin.reveal((userPin) => {
        api.C_InitPIN(opened, userPin);
      });
      api.C_Logout(opened);
    } catch (error) {
      throw toHsmError(error, { operation: 'set user PIN', token: label });
    } finally {
      if (session !== null) api.C_CloseSession(session);
    }
    return findTokenByLabel(api, label).summary;
  });
}
