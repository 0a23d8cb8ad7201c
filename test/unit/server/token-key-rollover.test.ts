import { expect } from 'chai';
import { SoftwareSigner } from '../../../src/core/index.js';
import { TokenIssuer } from '../../../src/tokens/index.js';
import { MemoryRolloverState } from '../../../src/server/rollover-state-file.js';
import { TokenKeyRollover } from '../../../src/server/token-key-rollover.js';
import { catchBrokerError } from '../../helpers/broker-error.js';
import { SeededRandom } from '../../helpers/seeded-random.js';

const T0 = new Date('2026-12-01T00:00:00Z');
const MINUTE_MS = 60_000;
const at = (minutes: number): Date => new Date(T0.getTime() + minutes * MINUTE_MS);

describe('server/token-key-rollover', () => {
  const random = new SeededRandom('token-key-rollover');
  const issuer = async (): Promise<TokenIssuer> => TokenIssuer.create({ signer: await SoftwareSigner.generate('P-256'), issuer: 'spiffe://unit.test/credbroker', random });

  it('publishes the next key before it signs, switches after the publication time, keeps the old key until its last token expired', async () => {
    const [old, next] = [await issuer(), await issuer()];
    const state = new MemoryRolloverState();
    const keys = new TokenKeyRollover({ current: { keyLabel: 'a', issuer: old }, next: { keyLabel: 'b', issuer: next }, publishForMs: 10 * MINUTE_MS, state, loaded: state.load() }, at(0));
    expect(keys.issuer(at(9))).to.equal(old);
    expect(keys.jwks(at(9)).keys.map((k) => k.kid)).to.deep.equal([old.kid, next.kid]);
    expect(keys.issuer(at(10))).to.equal(next);
    expect(keys.views(at(10)).map((v) => [v.keyLabel, v.state])).to.deep.equal([['b', 'active'], ['a', 'retiring']]);
    expect(keys.jwks(at(69)).keys.map((k) => k.kid)).to.deep.equal([next.kid, old.kid]);
    expect(keys.jwks(at(70)).keys.map((k) => k.kid)).to.deep.equal([next.kid]);
  });

  it('an operator rolls early; without a next key it is refused; a restart keeps the new key', async () => {
    const [old, next] = [await issuer(), await issuer()];
    const state = new MemoryRolloverState();
    const alone = new TokenKeyRollover({ current: { keyLabel: 'a', issuer: old }, next: null, publishForMs: MINUTE_MS, state: new MemoryRolloverState(), loaded: state.load() }, at(0));
    expect((await catchBrokerError(() => alone.rollNow(at(1)))).code).to.equal('tokens.no_next_key');
    const keys = new TokenKeyRollover({ current: { keyLabel: 'a', issuer: old }, next: { keyLabel: 'b', issuer: next }, publishForMs: 60 * MINUTE_MS, state, loaded: state.load() }, at(0));
    expect(keys.rollNow(at(1)).kid).to.equal(next.kid);
    const restarted = new TokenKeyRollover({ current: { keyLabel: 'a', issuer: old }, next: { keyLabel: 'b', issuer: next }, publishForMs: 60 * MINUTE_MS, state, loaded: state.load() }, at(2));
    expect(restarted.issuer(at(2))).to.equal(next);
  });
});
