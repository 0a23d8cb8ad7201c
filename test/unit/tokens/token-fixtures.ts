/** Shared fixtures of the tokens tests: signers, hand-made tokens, refusal checks. */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import type { Signer } from '../../../src/core/index.js';
import { TokenVerificationError, type TokenVerificationErrorCode } from '../../../src/tokens/index.js';

export const ISSUER = 'spiffe://credbroker.test/credbroker';
export const SUBJECT = 'spiffe://credbroker.test/ingest/camera-gateway';
export const AUDIENCE = 'storage.source';
/** Issue time of every fixture token: a whole second. */
export const T0 = new Date('2026-03-01T12:00:00Z');
export const T0_SECONDS = T0.getTime() / 1000;

/** Bytes that stand in for a DER certificate (the thumbprint hashes bytes, it does not parse). */
export function fakeCertificate(label: string): Buffer {
  const body = createHash('sha512').update(label).digest();
  return Buffer.concat([Buffer.from([0x30, 0x81, body.length]), body]);
}

/** PEM armour of DER bytes, 64 characters a line. */
export function pemOf(der: Uint8Array, label = 'CERTIFICATE'): string {
  const lines = Buffer.from(der).toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** base64url of a JSON value. */
export function encodeJson(value: unknown): string {
  return Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');
}

/** A compact JWS of any header and payload, signed by `signer` (for tokens TokenIssuer would never make). */
export async function signCompact(signer: Signer, header: Record<string, unknown>, payload: Record<string, unknown>): Promise<string> {
  const signingInput = `${encodeJson(header)}.${encodeJson(payload)}`;
  const signature = await signer.sign(Buffer.from(signingInput, 'ascii'));
  return `${signingInput}.${Buffer.from(signature).toString('base64url')}`;
}

/** The claims TokenIssuer would write at T0 for 5 minutes, with overrides (undefined deletes). */
export function claimsAt(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  const claims: Record<string, unknown> = {
    iss: ISSUER,
    sub: SUBJECT,
    client_id: SUBJECT,
    aud: AUDIENCE,
    scope: 'media.source.read',
    iat: T0_SECONDS,
    nbf: T0_SECONDS,
    exp: T0_SECONDS + 300,
    jti: 'AAAAAAAAAAAAAAAAAAAAAA',
  };
  for (const [name, value] of Object.entries(overrides)) {
    if (value === undefined) Reflect.deleteProperty(claims, name);
    else claims[name] = value;
  }
  return claims;
}

/**
 * Awaits `action`, expects a TokenVerificationError with `code` and a message that does not
 * contain the token (nor its signature), and returns the error.
 */
export async function expectRefusal(action: Promise<unknown>, code: TokenVerificationErrorCode, token: string): Promise<TokenVerificationError> {
  let caught: unknown;
  try {
    await action;
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected a TokenVerificationError ${code}`).to.be.instanceOf(TokenVerificationError);
  const error = caught as TokenVerificationError;
  expect(error.code, error.message).to.equal(code);
  if (token.length > 8) expect(error.message).not.to.include(token);
  const signature = token.split('.')[2] ?? '';
  if (signature.length > 8) expect(error.message).not.to.include(signature);
  return error;
}
