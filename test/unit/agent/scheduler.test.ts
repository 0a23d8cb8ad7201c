import { expect } from 'chai';
import { MAX_TIMERS_PER_ADVANCE, ManualClock, ManualScheduler, SystemScheduler } from '../../../src/core/index.js';

describe('core/scheduler (used by the agent)', () => {
  const start = Date.UTC(2026, 0, 1);

  describe('ManualScheduler', () => {
    it('fires due timers in order of due time, then of creation, with the clock at each due time', async () => {
      const clock = new ManualClock(start);
      const scheduler = new ManualScheduler(clock);
      const fired: string[] = [];
      const at = (name: string) => () => {
        fired.push(`${name}@${clock.now().getTime() - start}`);
      };
      scheduler.setTimeout(at('c'), 300);
      scheduler.setTimeout(at('a'), 100);
      scheduler.setTimeout(at('b'), 100);
      scheduler.setTimeout(at('late'), 1_000);
      await scheduler.advance(300);
      expect(fired).to.deep.equal(['a@100', 'b@100', 'c@300']);
      expect(clock.now().getTime()).to.equal(start + 300);
      expect(scheduler.pending).to.equal(1);
      expect(scheduler.nextDelayMs()).to.equal(700);
    });

    it('cancelled timers never fire; cancelling twice is harmless', async () => {
      const clock = new ManualClock(start);
      const scheduler = new ManualScheduler(clock);
      let fired = false;
      const task = scheduler.setTimeout(() => {
        fired = true;
      }, 10);
      task.cancel();
      task.cancel();
      await scheduler.advance(100);
      expect(fired).to.equal(false);
      expect(scheduler.pending).to.equal(0);
    });

    it('awaits the async work of a timer, and fires timers that timers set within the span', async () => {
      const clock = new ManualClock(start);
      const scheduler = new ManualScheduler(clock);
      const log: string[] = [];
      scheduler.setTimeout(async () => {
        await Promise.resolve();
        log.push('first done');
        scheduler.setTimeout(() => {
          log.push(`second@${clock.now().getTime() - start}`);
        }, 50);
      }, 100);
      await scheduler.advance(200);
      expect(log).to.deep.equal(['first done', 'second@150']);
      expect(clock.now().getTime()).to.equal(start + 200);
    });

    it('a timer that throws or rejects does not stop the others', async () => {
      const clock = new ManualClock(start);
      const scheduler = new ManualScheduler(clock);
      let after = false;
      scheduler.setTimeout(() => {
        throw new Error('boom');
      }, 1);
      scheduler.setTimeout(() => Promise.reject(new Error('boom')), 2);
      scheduler.setTimeout(() => {
        after = true;
      }, 3);
      await scheduler.advance(3);
      expect(after).to.equal(true);
    });

    it('negative and NaN delays count as 0; runNext jumps to the next timer', async () => {
      const clock = new ManualClock(start);
      const scheduler = new ManualScheduler(clock);
      let count = 0;
      scheduler.setTimeout(() => {
        count++;
      }, -5);
      scheduler.setTimeout(() => {
        count++;
      }, Number.NaN);
      await scheduler.advance(0);
      expect(count).to.equal(2);
      scheduler.setTimeout(() => {
        count++;
      }, 5_000);
      expect(await scheduler.runNext()).to.equal(true);
      expect(count).to.equal(3);
      expect(clock.now().getTime()).to.equal(start + 5_000);
      expect(await scheduler.runNext()).to.equal(false);
    });

    it('refuses a negative advance and stops a timer that re-arms itself at 0 ms for ever', async () => {
      const clock = new ManualClock(start);
      const scheduler = new ManualScheduler(clock);
      let rearms = 0;
      const loop = (): void => {
        rearms++;
        scheduler.setTimeout(loop, 0);
      };
      scheduler.setTimeout(loop, 0);
      let error: unknown;
      try {
        await scheduler.advance(1);
      } catch (caught) {
        error = caught;
      }
      expect(error).to.be.instanceOf(RangeError);
      expect(rearms).to.equal(MAX_TIMERS_PER_ADVANCE);
      try {
        await scheduler.advance(-1);
        expect.fail('expected a RangeError');
      } catch (caught) {
        expect(caught).to.be.instanceOf(RangeError);
      }
    });
  });

  describe('SystemScheduler', () => {
    it('fires a real timer (awaited by an event, no sleep) and cancel stops one', async () => {
      const scheduler = new SystemScheduler({ unref: true });
      let cancelledFired = false;
      scheduler.setTimeout(() => {
        cancelledFired = true;
      }, 1).cancel();
      await new Promise<void>((resolve) => {
        scheduler.setTimeout(resolve, 1);
      });
      // The cancelled timer was due before the one that resolved: had it fired, it would have by now.
      await new Promise<void>((resolve) => {
        scheduler.setTimeout(resolve, 2);
      });
      expect(cancelledFired).to.equal(false);
    });
  });
});
