import { expect } from 'chai';
import { DAY_MS, HOUR_MS, MINUTE_MS } from '../../../src/core/index.js';
import {
  LEAF_VALIDITY_DEFAULTS,
  MAX_LEAF_TTL_MS,
  checkCaValidity,
  computeValidity,
  type ValidityPolicy,
} from '../../../src/pki/index.js';
import { expectBrokerError } from './pki-fixtures.js';

describe('pki/validity', () => {
  const now = new Date('2026-03-01T12:00:00.750Z');
  const issuerNotAfter = new Date('2027-01-01T00:00:00Z');
  const policy: ValidityPolicy = { backdateMs: 5 * MINUTE_MS, defaultTtlMs: 2 * HOUR_MS, maxTtlMs: 12 * HOUR_MS };

  it('has documented leaf defaults: backdate 1 min, 1 h default, 24 h cap', () => {
    expect(LEAF_VALIDITY_DEFAULTS).to.deep.equal({ backdateMs: MINUTE_MS, defaultTtlMs: HOUR_MS, maxTtlMs: DAY_MS });
    expect(MAX_LEAF_TTL_MS).to.equal(DAY_MS);
    expect(Object.isFrozen(LEAF_VALIDITY_DEFAULTS)).to.equal(true);
  });

  const cases: { name: string; ttlMs: number | undefined; policy: ValidityPolicy; issuerNotAfter: Date; notBefore: string; notAfter: string }[] = [
    { name: 'default TTL and backdate (leaf defaults)', ttlMs: undefined, policy: LEAF_VALIDITY_DEFAULTS, issuerNotAfter, notBefore: '2026-03-01T11:59:00.000Z', notAfter: '2026-03-01T13:00:00.000Z' },
    { name: 'policy default', ttlMs: undefined, policy, issuerNotAfter, notBefore: '2026-03-01T11:55:00.000Z', notAfter: '2026-03-01T14:00:00.000Z' },
    { name: 'requested TTL', ttlMs: 30 * MINUTE_MS, policy, issuerNotAfter, notBefore: '2026-03-01T11:55:00.000Z', notAfter: '2026-03-01T12:30:00.000Z' },
    { name: 'exactly the cap', ttlMs: 12 * HOUR_MS, policy, issuerNotAfter, notBefore: '2026-03-01T11:55:00.000Z', notAfter: '2026-03-02T00:00:00.000Z' },
    { name: 'clipped to the issuer notAfter', ttlMs: 12 * HOUR_MS, policy, issuerNotAfter: new Date('2026-03-01T13:30:00Z'), notBefore: '2026-03-01T11:55:00.000Z', notAfter: '2026-03-01T13:30:00.000Z' },
    { name: 'clipped to an issuer notAfter with fractions, rounded down', ttlMs: undefined, policy, issuerNotAfter: new Date('2026-03-01T12:10:00.900Z'), notBefore: '2026-03-01T11:55:00.000Z', notAfter: '2026-03-01T12:10:00.000Z' },
    { name: 'zero backdate', ttlMs: 1000, policy: { backdateMs: 0, defaultTtlMs: 1000, maxTtlMs: 1000 }, issuerNotAfter, notBefore: '2026-03-01T12:00:00.000Z', notAfter: '2026-03-01T12:00:01.000Z' },
  ];
  for (const c of cases) {
    it(`computes ${c.name}`, () => {
      const validity = computeValidity(now, c.ttlMs, c.policy, c.issuerNotAfter);
      expect({ notBefore: validity.notBefore.toISOString(), notAfter: validity.notAfter.toISOString() }).to.deep.equal({ notBefore: c.notBefore, notAfter: c.notAfter });
      expect(validity.notAfter.getTime()).to.be.at.most(c.issuerNotAfter.getTime());
    });
  }

  const refusals: { name: string; ttlMs: number; message: RegExp }[] = [
    { name: 'above the cap (not clamped)', ttlMs: 12 * HOUR_MS + 1, message: /requested TTL 12h1ms exceeds the maximum of 12h/ },
    { name: 'far above the cap', ttlMs: 7 * DAY_MS, message: /requested TTL 7d exceeds the maximum of 12h/ },
    { name: 'zero', ttlMs: 0, message: /positive whole number of milliseconds, got 0/ },
    { name: 'negative', ttlMs: -HOUR_MS, message: /positive/ },
    { name: 'fractional', ttlMs: 1.5, message: /whole number/ },
    { name: 'NaN', ttlMs: Number.NaN, message: /got NaN/ },
    { name: 'Infinity', ttlMs: Number.POSITIVE_INFINITY, message: /got Infinity/ },
  ];
  for (const r of refusals) {
    it(`refuses a TTL ${r.name} as invalid pki.ttl`, async () => {
      await expectBrokerError(() => computeValidity(now, r.ttlMs, policy, issuerNotAfter), 'invalid', 'pki.ttl', r.message);
    });
  }

  it('refuses to issue under an expired or about-to-expire issuer (conflict)', async () => {
    await expectBrokerError(() => computeValidity(now, undefined, policy, new Date('2026-03-01T11:00:00Z')), 'conflict', 'pki.issuer_expired', /expired at 2026-03-01T11:00:00.000Z/);
    await expectBrokerError(() => computeValidity(now, undefined, policy, now), 'conflict', 'pki.issuer_expired');
    await expectBrokerError(
      () => computeValidity(now, undefined, { backdateMs: 0, defaultTtlMs: 1000, maxTtlMs: 1000 }, new Date('2026-03-01T12:00:00.900Z')),
      'conflict',
      'pki.issuer_expired',
      /too soon/,
    );
  });

  it('refuses an inconsistent policy as internal', async () => {
    for (const bad of [
      { backdateMs: -1, defaultTtlMs: HOUR_MS, maxTtlMs: HOUR_MS },
      { backdateMs: 0, defaultTtlMs: 0, maxTtlMs: HOUR_MS },
      { backdateMs: 0, defaultTtlMs: 2 * HOUR_MS, maxTtlMs: HOUR_MS },
      { backdateMs: 0.5, defaultTtlMs: HOUR_MS, maxTtlMs: HOUR_MS },
    ]) {
      await expectBrokerError(() => computeValidity(now, undefined, bad, issuerNotAfter), 'internal', 'pki.validity_policy');
    }
  });

  it('checkCaValidity refuses notAfter not after notBefore and invalid dates', async () => {
    checkCaValidity(new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:01Z'));
    await expectBrokerError(() => { checkCaValidity(new Date('2026-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00.999Z')); }, 'invalid', 'pki.validity', /must be after notBefore/);
    await expectBrokerError(() => { checkCaValidity(new Date('nope'), new Date('2026-01-01T00:00:00Z')); }, 'invalid', 'pki.validity', /valid dates/);
  });
});
