/** The Lens's two plots, in plain canvas: a heatmap with hover values, and a line chart. */

/** A colour for t in [0, 1]: dark blue through teal to yellow (viridis-like). */
function colour(t: number): string {
  const stops = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const x = Math.min(Math.max(Number.isFinite(t) ? t : 0, 0), 1) * (stops.length - 1);
  const i = Math.min(Math.floor(x), stops.length - 2);
  const f = x - i;
  const [a, b] = [stops[i]!, stops[i + 1]!];
  return `rgb(${a.map((v, k) => Math.round(v + (b[k]! - v) * f)).join(',')})`;
}

export interface HeatmapOptions {
  title: string;
  /** Row and column labels (tokens, layers, channels). */
  rows: string[];
  cols: string[];
  /** Pixels per cell, [width, height]. Default [18, 18]. */
  cell?: [number, number];
}

/**
 * A heatmap of `values[row][col]` (colour scaled from its min to its max) with a title; hovering a
 * cell shows its row, column and value in the figure's caption (`data-hover` holds the value).
 */
export function heatmap(values: number[][], options: HeatmapOptions): HTMLElement {
  const [cw, ch] = options.cell ?? [18, 18];
  const flat = values.flat();
  const lo = Math.min(...flat);
  const hi = Math.max(...flat);
  const figure = document.createElement('figure');
  figure.className = 'heatmap';
  const title = document.createElement('figcaption');
  title.textContent = options.title;
  const canvas = document.createElement('canvas');
  const rows = values.length;
  const cols = values[0]?.length ?? 0;
  canvas.width = cols * cw;
  canvas.height = rows * ch;
  const ctx = canvas.getContext('2d')!;
  values.forEach((row, r) => row.forEach((v, c) => {
    ctx.fillStyle = colour(hi > lo ? (v - lo) / (hi - lo) : 0.5);
    ctx.fillRect(c * cw, r * ch, cw, ch);
  }));
  const hover = document.createElement('div');
  hover.className = 'hover';
  hover.textContent = `min ${lo.toPrecision(3)}, max ${hi.toPrecision(3)}`;
  canvas.addEventListener('mousemove', (e) => {
    const rect = canvas.getBoundingClientRect();
    const c = Math.floor(((e.clientX - rect.left) / rect.width) * cols);
    const r = Math.floor(((e.clientY - rect.top) / rect.height) * rows);
    const v = values[r]?.[c];
    if (v === undefined) return;
    hover.textContent = `${options.rows[r] ?? r} → ${options.cols[c] ?? c}: ${v.toPrecision(4)}`;
    figure.dataset.hover = String(v);
  });
  figure.append(title, canvas, hover);
  return figure;
}

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);

/** A line chart of `series` (name -> y per x) over x labels, as SVG. */
export function lineChart(series: Record<string, number[]>, xLabels: string[], title: string): HTMLElement {
  const [w, h, pad] = [520, 220, 32];
  const all = Object.values(series).flat();
  const lo = Math.min(0, ...all);
  const hi = Math.max(...all);
  const x = (i: number) => pad + (i * (w - 2 * pad)) / Math.max(1, xLabels.length - 1);
  const y = (v: number) => h - pad - ((v - lo) / (hi - lo || 1)) * (h - 2 * pad);
  const palette = ['#3b528b', '#21918c', '#5ec962', '#fde725', '#440154', '#e66101', '#b2182b', '#2166ac'];
  const lines = Object.entries(series).map(([name, ys], k) =>
    `<polyline fill="none" stroke="${palette[k % palette.length]}" stroke-width="2" points="${ys.map((v, i) => `${x(i)},${y(v)}`).join(' ')}"><title>${esc(name)}</title></polyline>`);
  const ticks = xLabels.map((l, i) => `<text x="${x(i)}" y="${h - 10}" font-size="10" text-anchor="middle">${esc(l)}</text>`);
  const figure = document.createElement('figure');
  figure.className = 'line-chart';
  figure.innerHTML = `<figcaption>${esc(title)}</figcaption><svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}">
    <line x1="${pad}" y1="${h - pad}" x2="${w - pad}" y2="${h - pad}" stroke="#999"/>
    <text x="4" y="${pad}" font-size="10">${hi.toPrecision(3)}</text><text x="4" y="${h - pad}" font-size="10">${lo.toPrecision(3)}</text>
    ${lines.join('')}${ticks.join('')}</svg>`;
  return figure;
}
