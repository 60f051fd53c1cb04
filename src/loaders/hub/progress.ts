/**
 * A one-line download progress bar (bytes, rate, ETA) for terminals. It redraws at most ~10
 * times a second and prints nothing unless its sink is a TTY, so logs and CI stay clean.
 */
import type { ProgressSink } from './settings.js';

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
  private lastDraw = 0;
  private readonly start = Date.now();

  constructor(
    private readonly sink: ProgressSink | undefined,
    private readonly label: string,
    private readonly total: number,
    /** Bytes already on disk from an earlier attempt (a resumed download). */
    private readonly resumedFrom = 0,
  ) {
    this.done = resumedFrom;
  }

  /** Pick the sink from the `progress` option: explicit sink, stderr when it is a TTY, or none. */
  static sinkFor(option: boolean | ProgressSink | undefined): ProgressSink | undefined {
    if (option === false) return undefined;
    const sink = typeof option === 'object' ? option : process.stderr;
    return sink.isTTY === true ? sink : undefined;
  }

  add(bytes: number): void {
    this.done += bytes;
    const now = Date.now();
    if (now - this.lastDraw >= 100) {
      this.lastDraw = now;
      this.draw(false);
    }
  }

  finish(): void {
    this.draw(true);
  }

  /** The line as it would be drawn now (exposed for tests). */
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

  private draw(final: boolean): void {
    if (this.sink === undefined) return;
    let text = this.line();
    const cols = this.sink.columns ?? 100;
    if (text.length > cols - 1) text = text.slice(text.length - (cols - 1));
    this.sink.write(`\r\x1b[2K${text}${final ? '\n' : ''}`);
  }
}
