/** Why a certificate was revoked: RFC 5280 §5.3.1 reasons credbroker records (without removeFromCRL and aACompromise). */
export type RevocationReason =
  | 'unspecified'
  | 'keyCompromise'
  | 'caCompromise'
  | 'affiliationChanged'
  | 'superseded'
  | 'cessationOfOperation'
  | 'certificateHold'
  | 'privilegeWithdrawn';

/** Every reason, in RFC order. */
export const REVOCATION_REASONS: readonly RevocationReason[] = Object.freeze([
  'unspecified',
  'keyCompromise',
  'caCompromise',
  'affiliationChanged',
  'superseded',
  'cessationOfOperation',
  'certificateHold',
  'privilegeWithdrawn',
]);
