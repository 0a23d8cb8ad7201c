import { expect } from 'chai';
import type { JSONWebKeySet } from 'jose';
import { ManualClock, SoftwareSigner } from '../../../src/core/index.js';
import { JwksCache, TokenIssuer, TokenVerifier, jwksOf } from '../../../src/tokens/index.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';
import { AUDIENCE, ISSUER, SUBJECT, T0, expectRefusal } from './token-fixtures.js';

const MINUTE = 60_000;

/** A broker's GetJwks stand-in: serves `set`, counts calls, can fail or hold calls until released. */
class FakeBroker {
  set: JSONWebKeySet;
  calls = 0;
  failure: Error | null = null;
  #held: (() => void)[] = [];
  #holding = false;

  constructor(set: JSONWebKeySet) {
    this.set = set;
  }

  readonly fetch = async (): Promise<JSONWebKeySet> => {
    this.calls++;
    if (this.#holding) await new Promise<void>((resolve) => this.#held.push(resolve));
    if (this.failure !== null) throw this.failure;
    return structuredClone(this.set);
  };

  hold(): void {
    this.#holding = true;
  }

  release(): void {
    this.#holding = false;
    for (const resolve of this.#held.splice(0)) resolve();
  }
}

describe('tokens/JwksCache', () => {
  let current: TokenIssuer;
  let next: TokenIssuer;
  let clock: ManualClock;

  before(async () => {
    current = await TokenIssuer.create({ signer: await SoftwareSigner.generate('P-256'), issuer: ISSUER, random: new SeededRandom('current') });
    next = await TokenIssuer.create({ signer: await SoftwareSigner.generate('P-256'), issuer: ISSUER, random: new SeededRandom('next') });
  });

  beforeEach(() => {
    clock = new ManualClock(T0.getTime() + 1000);
  });

  async function tokenOf(issuer: TokenIssuer): Promise<string> {
    return (await issuer.issue({ subject: SUBJECT, audience: AUDIENCE, scopes: ['media.source.read'], ttlMs: 3_600_000, now: clock.now() })).token;
  }

  it('fetches on first use, then only when refreshIntervalMs has passed (driven by the clock, no timers)', async () => {
    const broker = new FakeBroker(jwksOf([current]));
    const cache = new JwksCache({ fetch: broker.fetch, clock });
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks: cache, clock });
    const token = await tokenOf(current);
    expect(broker.calls).to.equal(0);
    await verifier.verify(token, { audience: AUDIENCE });
    expect(broker.calls).to.equal(1);
    clock.advance(5 * MINUTE - 1);
    await verifier.verify(token, { audience: AUDIENCE });
    expect(broker.calls).to.equal(1);
    clock.advance(1);
    await verifier.verify(token, { audience: AUDIENCE });
    expect(broker.calls).to.equal(2);
    expect(cache.status()).to.deep.include({ kids: [current.kid], fetches: 2, lastError: null });
  });

  it('refreshes for an unknown kid at most once per minRefreshIntervalMs, however many forged kids arrive', async () => {
    const broker = new FakeBroker(jwksOf([current]));
    const cache = new JwksCache({ fetch: broker.fetch, clock });
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks: cache, clock });
    await verifier.verify(await tokenOf(current), { audience: AUDIENCE });
    expect(broker.calls).to.equal(1);
    clock.advance(30_000);
    const genuine = await tokenOf(current);
    const [, payload, signature] = genuine.split('.') as [string, string, string];
    const forged = (i: number): string => `${Buffer.from(JSON.stringify({ alg: 'ES256', kid: `forged-${i}`, typ: 'at+jwt' })).toString('base64url')}.${payload}.${signature}`;
    for (let i = 0; i < 500; i++) {
      await expectRefusal(verifier.verify(forged(i), { audience: AUDIENCE }), 'unknown_kid', forged(i));
      clock.advance(50);
    }
    // 500 forged kids over 25 s: one refresh (the first), none after.
    expect(broker.calls).to.equal(2);
    await Promise.all(Array.from({ length: 100 }, (_, i) => expectRefusal(verifier.verify(forged(1000 + i), { audience: AUDIENCE }), 'unknown_kid', forged(1000 + i))));
    expect(broker.calls).to.equal(2);
    clock.advance(5000);
    await expectRefusal(verifier.verify(forged(2000), { audience: AUDIENCE }), 'unknown_kid', forged(2000));
    expect(broker.calls).to.equal(3);
    // A genuine token still verifies throughout.
    expect((await verifier.verify(genuine, { audience: AUDIENCE })).kid).to.equal(current.kid);
  });

  it('learns a new key from a refresh caused by its kid; concurrent verifications share one fetch', async () => {
    const broker = new FakeBroker(jwksOf([current]));
    const cache = new JwksCache({ fetch: broker.fetch, clock });
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks: cache, clock });
    await verifier.verify(await tokenOf(current), { audience: AUDIENCE });
    broker.set = jwksOf([next, current]);
    const fresh = await tokenOf(next);
    // Within minRefreshIntervalMs of the last fetch the new kid is not fetched yet.
    clock.advance(10_000);
    await expectRefusal(verifier.verify(fresh, { audience: AUDIENCE }), 'unknown_kid', fresh);
    expect(broker.calls).to.equal(1);
    clock.advance(20_000);
    broker.hold();
    const pending = Promise.all([1, 2, 3].map(() => verifier.verify(fresh, { audience: AUDIENCE })));
    await Promise.resolve();
    broker.release();
    const results = await pending;
    expect(results.map((result) => result.kid)).to.deep.equal([next.kid, next.kid, next.kid]);
    expect(broker.calls).to.equal(2);
  });

  it('keeps keys that left the set usable for retainRemovedKeysMs, then refuses them as unknown', async () => {
    const broker = new FakeBroker(jwksOf([current]));
    const cache = new JwksCache({ fetch: broker.fetch, clock });
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks: cache, clock, maxTtlSeconds: 3600 });
    const old = await tokenOf(current);
    await verifier.verify(old, { audience: AUDIENCE });
    // Roll-over: the broker now publishes only the next key.
    broker.set = jwksOf([next]);
    clock.advance(5 * MINUTE);
    const fresh = await tokenOf(next);
    expect((await verifier.verify(fresh, { audience: AUDIENCE })).kid).to.equal(next.kid);
    expect(broker.calls).to.equal(2);
    const removedAt = clock.now().getTime();
    expect(cache.status().retained).to.deep.equal([{ kid: current.kid, until: new Date(removedAt + 60 * MINUTE) }]);
    expect(cache.status().kids).to.deep.equal([next.kid, current.kid]);
    // Still valid tokens of the old key keep verifying, across further refreshes.
    clock.advance(50 * MINUTE);
    expect((await verifier.verify(old, { audience: AUDIENCE })).kid).to.equal(current.kid);
    expect(broker.calls).to.be.greaterThan(2);
    // After the retention the old kid is unknown (a token of the old key signed later stays refused).
    clock.set(removedAt + 60 * MINUTE);
    const late = await tokenOf(current);
    await expectRefusal(verifier.verify(late, { audience: AUDIENCE }), 'unknown_kid', late);
    expect(cache.status().retained).to.deep.equal([]);
  });

  it('drops removed keys at once with retainRemovedKeysMs 0 (a withdrawn, compromised key)', async () => {
    const broker = new FakeBroker(jwksOf([current, next]));
    const cache = new JwksCache({ fetch: broker.fetch, clock, retainRemovedKeysMs: 0 });
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks: cache, clock });
    const token = await tokenOf(current);
    await verifier.verify(token, { audience: AUDIENCE });
    broker.set = jwksOf([next]);
    await cache.refresh();
    await expectRefusal(verifier.verify(token, { audience: AUDIENCE }), 'unknown_kid', token);
  });

  it('without any set, a failed fetch is unavailable (not a bad token), retried only after minRefreshIntervalMs', async () => {
    const broker = new FakeBroker(jwksOf([current]));
    broker.failure = new Error('UNAVAILABLE: connect ECONNREFUSED');
    const cache = new JwksCache({ fetch: broker.fetch, clock });
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks: cache, clock });
    const token = await tokenOf(current);
    const first = await catchBrokerError(verifier.verify(token, { audience: AUDIENCE }));
    expect(first).to.include({ kind: 'unavailable', code: 'tokens.jwks_unavailable', retryable: true });
    expect(first.logMessage).to.include('ECONNREFUSED');
    expect(first.message).not.to.include(token);
    clock.advance(29_999);
    await catchBrokerError(verifier.verify(token, { audience: AUDIENCE }));
    expect(broker.calls).to.equal(1);
    broker.failure = null;
    clock.advance(1);
    expect((await verifier.verify(token, { audience: AUDIENCE })).kid).to.equal(current.kid);
    expect(broker.calls).to.equal(2);
  });

  it('with a set, a failed refresh keeps the keys, reports the error in status, and retries after minRefreshIntervalMs', async () => {
    const broker = new FakeBroker(jwksOf([current]));
    const cache = new JwksCache({ fetch: broker.fetch, clock, refreshIntervalMs: MINUTE, minRefreshIntervalMs: 10_000 });
    const verifier = new TokenVerifier({ issuer: ISSUER, jwks: cache, clock });
    const token = await tokenOf(current);
    await verifier.verify(token, { audience: AUDIENCE });
    broker.failure = new Error('deadline exceeded');
    clock.advance(MINUTE);
    expect((await verifier.verify(token, { audience: AUDIENCE })).kid).to.equal(current.kid);
    expect(broker.calls).to.equal(2);
    expect(cache.status().lastError).to.equal('deadline exceeded');
    clock.advance(9_999);
    await verifier.verify(token, { audience: AUDIENCE });
    expect(broker.calls).to.equal(2);
    clock.advance(1);
    broker.failure = null;
    await verifier.verify(token, { audience: AUDIENCE });
    expect(broker.calls).to.equal(3);
    expect(cache.status().lastError).to.equal(null);
  });

  it('treats a reply that is not a JWK Set as a failed fetch', async () => {
    const broker = new FakeBroker({ keys: 'none' } as unknown as JSONWebKeySet);
    const cache = new JwksCache({ fetch: broker.fetch, clock });
    expect(await catchBrokerError(cache.refresh())).to.include({ kind: 'unavailable', code: 'tokens.jwks_unavailable' });
    expect(await cache.key(current.kid).catch((error: unknown) => error)).to.be.instanceOf(Error);
    expect(cache.status().kids).to.deep.equal([]);
  });

  it('refresh() fetches now whatever the intervals (for start-up)', async () => {
    const broker = new FakeBroker(jwksOf([current]));
    const cache = new JwksCache({ fetch: broker.fetch, clock });
    await cache.refresh();
    await cache.refresh();
    expect(broker.calls).to.equal(2);
    expect((await cache.key(current.kid))?.algorithm).to.equal('ES256');
    expect(broker.calls).to.equal(2);
    expect(cache.status().fetchedAt?.getTime()).to.equal(clock.now().getTime());
  });

  it('a clock that went backward allows one refresh instead of waiting for the old instant', async () => {
    const broker = new FakeBroker(jwksOf([current]));
    const cache = new JwksCache({ fetch: broker.fetch, clock });
    await cache.refresh();
    clock.set(clock.now().getTime() - 60 * MINUTE);
    expect(await cache.key('unknown')).to.equal(undefined);
    expect(await cache.key('unknown-too')).to.equal(undefined);
    expect(broker.calls).to.equal(2);
  });

  it('refuses intervals that are negative or not finite', async () => {
    const fetch = (): Promise<JSONWebKeySet> => Promise.resolve({ keys: [] });
    for (const options of [{ refreshIntervalMs: 0 }, { minRefreshIntervalMs: -1 }, { retainRemovedKeysMs: Number.NaN }, { refreshIntervalMs: Number.POSITIVE_INFINITY }]) {
      const error = await catchBrokerError(() => new JwksCache({ fetch, clock, ...options }));
      expect(error, JSON.stringify(options)).to.include({ kind: 'invalid', code: 'tokens.jwks_cache' });
    }
  });
});
