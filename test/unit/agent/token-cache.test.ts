import { expect } from 'chai';
import { TokenCache, cacheKey, type IssuedToken, type TokenRequest } from '../../../src/agent/index.js';
import { BrokerError, ManualClock } from '../../../src/core/index.js';

const START = Date.UTC(2026, 0, 1, 12);

function setup(lifetimeSeconds = 400) {
  const clock = new ManualClock(START);
  const requests: TokenRequest[] = [];
  let fail: BrokerError | null = null;
  let release: (() => void) | null = null;
  let gated = false;
  const cache = new TokenCache({
    clock,
    fetch: async (request) => {
      requests.push(request);
      if (gated) await new Promise<void>((resolve) => (release = resolve));
      if (fail !== null) throw fail;
      const n = requests.length;
      return { token: `token-${n}`, tokenId: `jti-${n}`, expiresAtUnix: Math.floor(clock.now().getTime() / 1000) + lifetimeSeconds, bound: false } satisfies IssuedToken;
    },
  });
  return {
    clock,
    cache,
    requests,
    failWith: (error: BrokerError | null) => (fail = error),
    gate: () => (gated = true),
    open: () => {
      gated = false;
      release?.();
    },
  };
}

describe('agent/TokenCache', () => {
  const request = { audience: 'storage.source', scopes: ['media.source.read'] };

  it('serves the cached token until 3/4 of its lifetime, then fetches a new one', async () => {
    const { cache, clock, requests } = setup(400);
    expect(await cache.token(request)).to.equal('token-1');
    clock.advance(299_999);
    expect(await cache.token(request)).to.equal('token-1');
    clock.advance(1);
    expect(await cache.token(request)).to.equal('token-2');
    expect(requests).to.have.length(2);
  });

  it('one token per (audience, scopes, binding, ttl); scope order and duplicates do not matter', async () => {
    const { cache, requests } = setup();
    await cache.token({ audience: 'a', scopes: ['x', 'y'] });
    await cache.token({ audience: 'a', scopes: ['y', 'x', 'x'] });
    await cache.token({ audience: 'a', scopes: ['x'] });
    await cache.token({ audience: 'b', scopes: ['x', 'y'] });
    await cache.token({ audience: 'a', scopes: ['x', 'y'], bindToCertificate: true });
    await cache.token({ audience: 'a', scopes: ['x', 'y'], ttlSeconds: 60 });
    expect(requests).to.have.length(5);
    expect(cache.size).to.equal(5);
  });

  it('concurrent callers share one fetch', async () => {
    const { cache, requests, gate, open } = setup();
    gate();
    const all = Promise.all([cache.token(request), cache.token(request), cache.token(request)]);
    await new Promise<void>((resolve) => setImmediate(resolve));
    open();
    expect(await all).to.deep.equal(['token-1', 'token-1', 'token-1']);
    expect(requests).to.have.length(1);
  });

  it('a failed refresh returns the cached token while it is still valid, then the error', async () => {
    const { cache, clock, failWith } = setup(400);
    await cache.token(request);
    clock.advance(350_000);
    failWith(new BrokerError('unavailable', { code: 'broker.unavailable', publicMessage: 'down' }));
    expect(await cache.token(request)).to.equal('token-1');
    clock.advance(50_000);
    try {
      await cache.token(request);
      expect.fail('expected the fetch error');
    } catch (error) {
      expect((error as BrokerError).publicMessage).to.equal('down');
    }
  });

  it('clear() forgets every token, and a fetch under way is not cached (its certificate is gone)', async () => {
    const { cache, requests, gate, open } = setup();
    await cache.token(request);
    gate();
    cache.clear();
    const pending = cache.token(request);
    await new Promise<void>((resolve) => setImmediate(resolve));
    cache.clear();
    open();
    expect(await pending).to.equal('token-2');
    expect(cache.size).to.equal(0);
    expect(await cache.token(request)).to.equal('token-3');
    expect(requests).to.have.length(3);
  });

  it('refuses a request without audience or scopes before asking the broker', () => {
    expect(() => cacheKey({ audience: '', scopes: ['x'] })).to.throw(BrokerError, /audience/);
    expect(() => cacheKey({ audience: 'a', scopes: [] })).to.throw(BrokerError, /scope/);
  });
});
