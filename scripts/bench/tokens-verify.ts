/**
 * Token verification benchmark: TokenVerifier (the consuming services' helper) against jose's
 * `jwtVerify` with `createLocalJWKSet` (the baseline) on the same ~1000 ES256 tokens, one core,
 * sequential (await per token, as a request handler does).
 *
 *   npm run bench -- tokens-verify [--seconds 2]   (also part (c) of `npm run bench -- tokens`)
 */
import { performance } from 'node:perf_hooks';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { ManualClock, SoftwareSigner, systemRandom } from '../../src/core/index.js';
import { TokenIssuer, TokenVerifier, certificateSha256, jwksOf } from '../../src/tokens/index.js';

/** Tokens minted for one measurement. */
const TOKEN_COUNT = 1000;
/** Upper bound on verifications per measurement, whatever the speed. */
const MAX_OPS = 2_000_000;
const ISSUER = 'spiffe://bench.credbroker.test/credbroker';
const AUDIENCE = 'storage.source';
const ISSUED_AT = new Date('2026-03-01T12:00:00Z');

/** Result of {@link measureVerification}. */
export interface VerificationMeasurement {
  /** TokenVerifier verifications per second (one core, sequential). */
  readonly perSecond: number;
  /** jose `jwtVerify` + `createLocalJWKSet` verifications per second on the same tokens (baseline). */
  readonly josePerSecond: number;
  /** perSecond / josePerSecond. */
  readonly ratioToJose: number;
  /** Verifications TokenVerifier made. */
  readonly verifications: number;
  /** Distinct tokens cycled through. */
  readonly tokens: number;
  /** CPU time (user + system) per wall-clock second during the TokenVerifier loop: ≈1 means one core. */
  readonly coresUsed: number;
}

/**
 * Mints {@link TOKEN_COUNT} certificate-bound ES256 tokens with a software P-256 key, then
 * verifies them in a loop for about `seconds` (0.2 to 30) with TokenVerifier over a static JWK
 * Set (checking audience, a scope and the binding), and as long with jose's jwtVerify.
 * @throws Error if any verification fails (a benchmark of failures would measure nothing)
 */
export async function measureVerification(seconds: number): Promise<VerificationMeasurement> {
  const boundedSeconds = Math.min(30, Math.max(0.2, Number.isFinite(seconds) ? seconds : 2));
  const signer = await SoftwareSigner.generate('P-256', 'software:bench-tokens');
  const issuer = await TokenIssuer.create({ signer, issuer: ISSUER, random: systemRandom });
  const certificate = Buffer.concat([Buffer.from([0x30, 0x82, 0x02, 0x9c]), systemRandom.bytes(668)]);
  const tokens: string[] = [];
  for (let i = 0; i < TOKEN_COUNT; i++) {
    const issued = await issuer.issue({
      subject: `spiffe://bench.credbroker.test/service-${i % 50}`,
      audience: AUDIENCE,
      scopes: ['media.source.read', 'media.source.list'],
      ttlMs: 300_000,
      now: ISSUED_AT,
      certificateSha256: certificateSha256(certificate),
    });
    tokens.push(issued.token);
  }
  const jwks = jwksOf([issuer]);
  const clock = new ManualClock(ISSUED_AT.getTime() + 60_000);
  const verifier = new TokenVerifier({ issuer: ISSUER, jwks, clock });
  const expectations = { audience: AUDIENCE, scopes: ['media.source.read'], clientCertificate: certificate, requireBinding: true };

  const ours = await loop(boundedSeconds, async (token) => {
    await verifier.verify(token, expectations);
  }, tokens);

  const keySet = createLocalJWKSet(jwks);
  const options = { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt', algorithms: ['ES256'], currentDate: clock.now(), clockTolerance: 5 };
  const jose = await loop(boundedSeconds, async (token) => {
    await jwtVerify(token, keySet, options);
  }, tokens);

  return {
    perSecond: ours.perSecond,
    josePerSecond: jose.perSecond,
    ratioToJose: ours.perSecond / jose.perSecond,
    verifications: ours.count,
    tokens: tokens.length,
    coresUsed: ours.coresUsed,
  };
}

async function loop(
  seconds: number,
  verify: (token: string) => Promise<void>,
  tokens: readonly string[],
): Promise<{ perSecond: number; count: number; coresUsed: number }> {
  // Warm-up: key import, JIT.
  for (let i = 0; i < 200; i++) await verify(tokens[i % tokens.length]!);
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let count = 0;
  while (count < MAX_OPS && (count & 63 || performance.now() < deadline)) {
    await verify(tokens[count % tokens.length]!);
    count++;
  }
  const elapsedSeconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  return { perSecond: count / elapsedSeconds, count, coresUsed: (cpu.user + cpu.system) / 1e6 / elapsedSeconds };
}

/** Entry point for `npm run bench -- tokens [--seconds N]`. */
export async function run(args: string[]): Promise<void> {
  let seconds = 2;
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--seconds') {
      seconds = Number(args[i + 1]);
      i++;
    } else {
      throw new Error(`unknown option ${String(args[i])}`);
    }
  }
  const result = await measureVerification(seconds);
  process.stdout.write(
    `tokens verify (ES256, bound, one core): TokenVerifier ${result.perSecond.toFixed(0)}/s, ` +
      `jose jwtVerify ${result.josePerSecond.toFixed(0)}/s (×${result.ratioToJose.toFixed(2)}), ` +
      `${result.verifications} verifications of ${result.tokens} tokens, ${result.coresUsed.toFixed(2)} cores\n`,
  );
}
