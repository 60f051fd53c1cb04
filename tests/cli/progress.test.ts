// The distill command's step progress: a cli-progress bar on a terminal, plain lines elsewhere.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StepProgress } from '../../src/cli/progress.js';
import { LINE_INTERVAL_MS } from '../../src/loaders/hub/progress.js';

function recorder(isTTY: boolean) {
  const out: string[] = [];
  const sink = { isTTY, columns: 120, write: (s: string) => (out.push(s), true) } as unknown as NodeJS.WriteStream;
  return { out, sink };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('StepProgress', () => {
  it('off a terminal: the first step, then at most one line per interval, and the last', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const { out, sink } = recorder(false);
    const progress = new StepProgress('distill', 5, sink);
    progress.update(1, 'loss 2.0000');
    progress.update(2, 'loss 1.5000'); // same instant: no line
    vi.advanceTimersByTime(LINE_INTERVAL_MS);
    progress.update(3, 'loss 1.2000');
    progress.update(4, 'loss 1.1000');
    progress.update(5, 'loss 1.0000');
    progress.stop();
    expect(out).toEqual(['distill step 1/5 loss 2.0000\n', 'distill step 3/5 loss 1.2000\n', 'distill step 5/5 loss 1.0000\n']);
  });

  it('on a terminal: a bar redrawn in place, ending on the last step; stop is safe twice', () => {
    const { out, sink } = recorder(true);
    const progress = new StepProgress('distill', 4, sink);
    for (let step = 1; step <= 4; step++) progress.update(step, `loss ${(1 / step).toFixed(4)}`);
    progress.stop();
    progress.stop();
    const text = out.join('');
    expect(text).toContain('\x1b['); // cursor control: drawn in place
    // eslint-disable-next-line no-control-regex
    const plain = text.replace(/\x1b(\[[0-9;?]*[A-Za-z]|[78])/g, '');
    expect(plain).toMatch(/distill \[={20}\] 4\/4 steps \| loss 0\.2500 \| ETA 0s/);
    expect(text.endsWith('\n')).toBe(true);
  });
});
