/** The options of an HsmToken from the `hsm` section of a config file. */
import type { Secret } from '../core/index.js';
import type { HsmConfig } from '../config/index.js';
import type { HsmTokenOptions } from './hsm-token.js';

/** HsmToken options from `hsm` config and the PIN read from its secret source. */
export function hsmTokenOptions(hsm: HsmConfig, pin: Secret): HsmTokenOptions {
  return {
    modulePath: hsm.module,
    tokenLabel: hsm.token,
    pin,
    sessions: hsm.sessions,
    signMode: hsm.signMode,
    verifyAfterSign: hsm.verifyAfterSign,
  };
}
