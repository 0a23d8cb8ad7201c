import { expect } from 'chai';
import { ManualClock, systemClock } from '../../../src/core/index.js';

describe('core/clock', () => {
  const start = Date.UTC(2025, 0, 1, 12, 0, 0);

  it('ManualClock starts where it is told (Date or epoch ms)', () => {
    expect(new ManualClock(start).now().getTime()).to.equal(start);
    expect(new ManualClock(new Date(start)).now().toISOString()).to.equal('2025-01-01T12:00:00.000Z');
  });

  it('does not move by itself', () => {
    const clock = new ManualClock(start);
    expect(clock.now().getTime()).to.equal(clock.now().getTime());
  });

  it('advances by the given milliseconds and returns the new instant', () => {
    const clock = new ManualClock(start);
    expect(clock.advance(90_000).getTime()).to.equal(start + 90_000);
    expect(clock.advance(0).getTime()).to.equal(start + 90_000);
    expect(clock.now().getTime()).to.equal(start + 90_000);
  });

  for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
    it(`refuses to advance by ${String(bad)} ms`, () => {
      const clock = new ManualClock(start);
      expect(() => clock.advance(bad)).to.throw(RangeError);
      expect(clock.now().getTime()).to.equal(start);
    });
  }

  it('set may go backward (clock-skew tests)', () => {
    const clock = new ManualClock(start);
    clock.set(start - 5_000);
    expect(clock.now().getTime()).to.equal(start - 5_000);
    clock.set(new Date(start));
    expect(clock.now().getTime()).to.equal(start);
  });

  it('hands out copies: changing a returned Date does not move the clock', () => {
    const clock = new ManualClock(start);
    clock.now().setTime(0);
    expect(clock.now().getTime()).to.equal(start);
  });

  it('systemClock reads the real time and cannot be replaced', () => {
    const before = Date.now();
    const now = systemClock.now().getTime();
    expect(now).to.be.at.least(before);
    expect(Object.isFrozen(systemClock)).to.equal(true);
  });
});
