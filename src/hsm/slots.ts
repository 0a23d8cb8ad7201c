/**
 * Tokens are chosen by label, never by slot index: slot numbers change when a token is
 * initialised (SoftHSM reassigns them) and differ between machines.
 */
import pkcs11js from 'pkcs11js';
import { BrokerError } from '../core/index.js';
import { toHsmError } from './hsm-error.js';

/** What `credbroker hsm tokens` shows of a token. */
export interface TokenSummary {
  /** Slot handle, hex; informative only, never used to select a token. */
  readonly slot: string;
  /** The token label (padding removed); empty for an uninitialised token. */
  readonly label: string;
  readonly manufacturer: string;
  readonly model: string;
  readonly serialNumber: string;
  readonly initialized: boolean;
  readonly userPinInitialized: boolean;
  readonly userPinLocked: boolean;
  readonly userPinFinalTry: boolean;
  readonly userPinCountLow: boolean;
  readonly soPinLocked: boolean;
}

/** A token found in a slot. */
export interface SlotToken {
  readonly slot: pkcs11js.Handle;
  readonly summary: TokenSummary;
}

/** Every slot that has a token, with a summary of the token. */
export function listSlotTokens(api: pkcs11js.PKCS11): SlotToken[] {
  let slots: pkcs11js.Handle[];
  try {
    slots = api.C_GetSlotList(true);
  } catch (error) {
    throw toHsmError(error, { operation: 'list slots', token: '*' });
  }
  const tokens: SlotToken[] = [];
  for (const slot of slots) {
    let info: pkcs11js.TokenInfo;
    try {
      info = api.C_GetTokenInfo(slot);
    } catch {
      continue; // the token went away between the two calls
    }
    const flag = (bit: number): boolean => (info.flags & bit) !== 0;
    tokens.push({
      slot,
      summary: {
        slot: slot.toString('hex'),
        label: padded(info.label),
        manufacturer: padded(info.manufacturerID),
        model: padded(info.model),
        serialNumber: padded(info.serialNumber),
        initialized: flag(pkcs11js.CKF_TOKEN_INITIALIZED),
        userPinInitialized: flag(pkcs11js.CKF_USER_PIN_INITIALIZED),
        userPinLocked: flag(pkcs11js.CKF_USER_PIN_LOCKED),
        userPinFinalTry: flag(pkcs11js.CKF_USER_PIN_FINAL_TRY),
        userPinCountLow: flag(pkcs11js.CKF_USER_PIN_COUNT_LOW),
        soPinLocked: flag(pkcs11js.CKF_SO_PIN_LOCKED),
      },
    });
  }
  return tokens;
}

/**
 * The slot of the one initialised token with this label.
 * @throws BrokerError `hsm.token_not_found` (naming the labels present) or `hsm.token_ambiguous`
 */
export function findTokenByLabel(api: pkcs11js.PKCS11, label: string): SlotToken {
  const tokens = listSlotTokens(api).filter((token) => token.summary.initialized);
  const matches = tokens.filter((token) => token.summary.label === label);
  if (matches.length === 1 && matches[0] !== undefined) return matches[0];
  if (matches.length > 1) {
    throw new BrokerError('conflict', {
      code: 'hsm.token_ambiguous',
      publicMessage: `${matches.length} tokens are labelled "${label}": labels must be unique; relabel or remove one`,
      retryable: false,
    });
  }
  const present = tokens.map((token) => `"${token.summary.label}"`).join(', ') || 'none';
  throw new BrokerError('not_found', {
    code: 'hsm.token_not_found',
    publicMessage: `no initialised token labelled "${label}" (tokens present: ${present}); list them with \`credbroker hsm tokens\` or create one with \`credbroker hsm init-token\``,
    retryable: false,
  });
}

/** A PKCS#11 blank-padded string without its padding (some modules also pad with NULs). */
function padded(text: string): string {
  return text.replace(/[\s\0]+$/, '');
}
