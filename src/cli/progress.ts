/**
 * Step progress on stderr for long commands (distill): a cli-progress bar on a terminal, else a
 * plain line for the first step, then at most one every {@link LINE_INTERVAL_MS}, and the last.
 */
import { SingleBar } from 'cli-progress';
import { LINE_INTERVAL_MS } from '../loaders/hub/progress.js';

export class StepProgress {
  private readonly bar: SingleBar | undefined;
  private lastLine = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly sink: NodeJS.WriteStream = process.stderr,
  ) {
    if (sink.isTTY === true) {
      this.bar = new SingleBar({
        stream: sink,
        format: `${label} [{bar}] {value}/{total} steps | {status} | ETA {eta_formatted}`,
        // A hidden cursor would stay hidden after Ctrl-C (the bar does not trap SIGINT).
        hideCursor: false,
        barsize: 20,
      });
      this.bar.start(total, 0, { status: 'starting' });
    }
  }

  /** Step `done` (1-based) finished; `status` says how it went (e.g. its loss). */
  update(done: number, status: string): void {
    if (this.bar !== undefined) {
      this.bar.update(done, { status });
      return;
    }
    const now = Date.now();
    if (done === 1 || done === this.total || now - this.lastLine >= LINE_INTERVAL_MS) {
      this.lastLine = now;
      this.sink.write(`${this.label} step ${done}/${this.total} ${status}\n`);
    }
  }

  /** Stop the bar (safe to call twice, and on an error path). */
  stop(): void {
    this.bar?.stop();
  }
}
