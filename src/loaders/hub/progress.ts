/**
 * Download progress for one file. On a terminal it is a cli-progress bar (bytes, rate, ETA) that
 * redraws in place; anywhere else (a log file, CI, a pipe) it writes a plain line at most every
 * {@link LINE_INTERVAL_MS} and a last one when the file is complete, so logs show progress
 * without carriage returns or escape codes.
 */
import { SingleBar } from 'cli-progress';
import type { ProgressSink } from './settings.js';

/** Least time between two progress lines on a sink that is not a terminal. */
export const LINE_INTERVAL_MS = 2000;

export function formatBytes(n: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = 0;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u++;
  }
  return `${u === 0 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const mmss = `${String(m).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return h > 0 ? `${h}:${mmss}` : mmss;
}

export class ProgressBar {
  private done = 0;
  private readonly start = Date.now();
  /** The terminal bar; undefined for a non-terminal sink or none. */
  private readonly bar: SingleBar | undefined;
  private lastLine: number;
  private closed = false;

  constructor(
    private readonly sink: ProgressSink | undefined,
    private readonly label: string,
    private readonly total: number,
    /** Bytes already on disk from an earlier attempt (a resumed download). */
    private readonly resumedFrom = 0,
  ) {
    this.done = resumedFrom;
    // The first line comes after one interval: a file that takes less gets its final line only.
    this.lastLine = this.start;
    if (sink?.isTTY === true) {
      this.bar = new SingleBar({
        // cli-progress only writes to the stream and reads isTTY/columns; readline's cursor
        // helpers it calls only write escape codes, so any ProgressSink serves.
        stream: sink as unknown as NodeJS.WritableStream,
        format: (_options, params) => this.fit(this.line(), params.maxWidth),
        hideCursor: false,
        // The caller's process owns SIGINT; the bar is stopped by finish()/close().
        gracefulExit: false,
        fps: 10,
      });
      this.bar.start(total, resumedFrom);
    }
  }

  /**
   * Where progress goes for a `progress` option: `false` none; a sink always (a bar if it is a
   * terminal, periodic lines otherwise); `true` stderr always; unset stderr only when it is a
   * terminal, so library users' logs stay clean unless they ask for progress.
   */
  static sinkFor(option: boolean | ProgressSink | undefined): ProgressSink | undefined {
    if (option === false) return undefined;
    if (typeof option === 'object') return option;
    if (option === true) return process.stderr;
    return process.stderr.isTTY === true ? process.stderr : undefined;
  }

  add(bytes: number): void {
    this.done += bytes;
    if (this.bar !== undefined) {
      this.bar.update(this.done);
      return;
    }
    const now = Date.now();
    if (this.sink !== undefined && now - this.lastLine >= LINE_INTERVAL_MS) {
      this.lastLine = now;
      this.sink.write(`${this.line()}\n`);
    }
  }

  /** The file is complete: the last drawing (or line), then the bar lets go of the sink. */
  finish(): void {
    this.close(true);
  }

  /**
   * Stop drawing without a final line (the transfer failed; its error says why). Safe to call
   * after {@link finish}; the terminal bar's redraw timer must not outlive the transfer.
   */
  close(final = false): void {
    if (this.closed) return;
    this.closed = true;
    if (this.bar !== undefined) {
      this.bar.update(this.done);
      this.bar.stop();
    } else if (final && this.sink !== undefined) {
      this.sink.write(`${this.line()}\n`);
    }
  }

  /** The progress line as it would be drawn now (exposed for tests). */
  line(): string {
    const elapsed = Math.max((Date.now() - this.start) / 1000, 1e-3);
    const rate = (this.done - this.resumedFrom) / elapsed;
    const pct = this.total > 0 ? Math.min(100, (100 * this.done) / this.total) : 100;
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const width = 20;
    const filled = Math.round((pct / 100) * width);
    const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
    return `${this.label} ${bar} ${pct.toFixed(0).padStart(3)}% ${formatBytes(this.done)}/${formatBytes(this.total)} ${formatBytes(rate)}/s ETA ${formatDuration(eta)}`;
  }

  /** Keep the end of a line too wide for the terminal: the numbers matter more than the name. */
  private fit(text: string, columns: number | undefined): string {
    const cols = this.sink?.columns ?? columns ?? 100;
    return text.length > cols - 1 ? text.slice(text.length - (cols - 1)) : text;
  }
}
