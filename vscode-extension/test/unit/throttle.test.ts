import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { LatestThrottle, type Timers } from '../../src/throttle';

/** Fake timers: `advance(ms)` runs what falls due. */
class FakeTimers implements Timers {
  now = 0;
  private next = 1;
  private readonly due = new Map<number, { at: number; fn: () => void }>();

  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.due.set(id, { at: this.now + ms, fn });
    return id;
  }

  clearTimeout(handle: unknown): void {
    this.due.delete(handle as number);
  }

  advance(ms: number): void {
    const end = this.now + ms;
    for (;;) {
      const first = [...this.due.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (first === undefined) {
        break;
      }
      this.due.delete(first[0]);
      this.now = first[1].at;
      first[1].fn();
    }
    this.now = end;
  }

  get scheduled(): number {
    return this.due.size;
  }
}

function setup() {
  const timers = new FakeTimers();
  const sent: Array<[number, string]> = [];
  const t = new LatestThrottle<string>(50, (v) => sent.push([timers.now, v]), timers);
  return { timers, sent, t };
}

describe('LatestThrottle', () => {
  it('sends the first value at once', () => {
    const { sent, t } = setup();
    t.push('a');
    assert.deepEqual(sent, [[0, 'a']]);
  });

  it('coalesces a burst and always sends the last value', () => {
    const { timers, sent, t } = setup();
    t.push('a');
    t.push('b');
    t.push('c');
    timers.advance(10);
    t.push('d');
    assert.deepEqual(sent, [[0, 'a']]);
    timers.advance(40);
    assert.deepEqual(sent, [[0, 'a'], [50, 'd']]);
    timers.advance(1000);
    assert.deepEqual(sent, [[0, 'a'], [50, 'd']]);
    assert.equal(timers.scheduled, 0);
  });

  it('sends a steady stream once per interval', () => {
    const { timers, sent, t } = setup();
    for (let i = 0; i < 20; i++) {
      t.push(String(i));
      timers.advance(10);
    }
    timers.advance(100);
    assert.deepEqual(sent.map(([at]) => at), [0, 50, 100, 150, 200]);
    assert.equal(sent.at(-1)?.[1], '19');
  });

  it('sends at once again after a quiet interval', () => {
    const { timers, sent, t } = setup();
    t.push('a');
    timers.advance(200);
    t.push('b');
    assert.deepEqual(sent, [[0, 'a'], [200, 'b']]);
  });

  it('flush sends the pending value now', () => {
    const { timers, sent, t } = setup();
    t.push('a');
    t.push('b');
    t.flush();
    assert.deepEqual(sent, [[0, 'a'], [0, 'b']]);
    timers.advance(100);
    assert.equal(sent.length, 2);
  });

  it('sends nothing after dispose', () => {
    const { timers, sent, t } = setup();
    t.push('a');
    t.push('b');
    t.dispose();
    timers.advance(100);
    t.push('c');
    assert.deepEqual(sent, [[0, 'a']]);
    assert.equal(timers.scheduled, 0);
  });
});
