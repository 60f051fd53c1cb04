/**
 * Tessera Lens: load a model (a bundled tiny fixture or a hub name), stream generation, and look
 * inside with the hooks API (analysis.ts). `npm run lens` builds this page and serves it.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tessera from '../../src/browser.js';
import type { CausalLM, HookHandle, TextTokenizer } from '../../src/browser.js';
import { addAblation, attentionPatterns, compareAblation, hiddenNorms, layerKinds, logitLens, mambaInternals, type AblationResult, type LensCell } from './analysis.js';
import { heatmap, lineChart } from './plots.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);

/** The page's state, on window.lens for the browser tests. */
const state: {
  lm?: CausalLM;
  tokenizer?: TextTokenizer;
  backend?: string;
  pieces: string[];
  ablation?: HookHandle;
  lens?: LensCell[][];
  ablationResult?: AblationResult;
  busy: Promise<unknown>;
} = { pieces: [], busy: Promise.resolve() };
(globalThis as unknown as { lens: unknown }).lens = { state, tessera, tf, analyse: () => analyse() };

function status(text: string, error = false): void {
  $('status').textContent = text;
  $('status').classList.toggle('error', error);
}

/** Run one action at a time; errors go to the status line. */
function action(fn: () => Promise<void>): () => void {
  return () => {
    state.busy = state.busy.then(fn).catch((err: Error) => status(`${err.name}: ${err.message}`, true));
  };
}

function tokenLabels(ids: number[]): string[] {
  return ids.map((id) => {
    const text = state.tokenizer?.decode([id], { skipSpecialTokens: false }) ?? '';
    return text.trim() === '' ? `#${id}` : text;
  });
}

function promptIds(): number[] {
  if (state.tokenizer === undefined) throw new Error('this model has no tokenizer: the Lens needs tokenizer.json');
  const ids = state.tokenizer.encodeText(($('prompt') as HTMLInputElement).value, { addSpecialTokens: true });
  if (ids.length === 0) throw new Error('the prompt encodes to no tokens');
  return ids;
}

async function load(): Promise<void> {
  const backend = ($('backend') as HTMLSelectElement).value;
  if (state.backend !== backend) {
    status(`starting ${backend}…`);
    await tessera.initBackend({ backend: backend as tessera.BackendName, wasmPaths: new URL('./', location.href).href });
    state.backend = backend;
  }
  const choice = ($('model') as HTMLSelectElement).value;
  state.ablation?.remove();
  state.ablation = undefined;
  state.lm?.dispose();
  state.lm = undefined;
  const t0 = performance.now();
  if (choice.startsWith('url:')) {
    const name = choice.slice(4);
    status(`loading ${name}…`);
    state.lm = await tessera.AutoCausalLM.fromUrl(new URL(`./models/${name}`, location.href).href, { tokenizer: true });
  } else {
    const name = ($('hub-name') as HTMLInputElement).value.trim();
    status(`loading ${name} from the hub…`);
    const endpoint = params.get('endpoint') ?? undefined;
    state.lm = await tessera.AutoCausalLM.fromHfHub(name, { tokenizer: true, ...(endpoint === null ? {} : { endpoint }) });
  }
  state.tokenizer = tessera.attachedTokenizer(state.lm);
  const kinds = layerKinds(state.lm);
  status(`${state.lm.architecture}: ${kinds.count} layers (${kinds.attention.length} attention, ${kinds.mamba.length} Mamba) on ${backend}, loaded in ${Math.round(performance.now() - t0)} ms`);
  document.body.dataset.model = choice;
  ($('generate') as HTMLButtonElement).disabled = false;
  ($('analyse') as HTMLButtonElement).disabled = false;
  await analyse();
}

async function generate(): Promise<void> {
  const lm = state.lm!;
  const out = $('output');
  out.textContent = '';
  state.pieces = [];
  const t0 = performance.now();
  const stream = lm.streamText(($('prompt') as HTMLInputElement).value, { maxNewTokens: Number(($('max-tokens') as HTMLInputElement).value) });
  for await (const piece of stream) {
    state.pieces.push(piece);
    out.textContent += piece;
  }
  status(`generated ${state.pieces.length} pieces in ${Math.round(performance.now() - t0)} ms${state.ablation ? ' (with the ablation on)' : ''}`);
  out.dataset.done = 'true';
}

function layerSelect(layers: number[], onChange: (layer: number) => void, label = 'Layer'): HTMLElement {
  const wrap = document.createElement('label');
  wrap.textContent = `${label} `;
  const select = document.createElement('select');
  select.className = 'layer-select';
  for (const i of layers) select.add(new Option(String(i), String(i)));
  select.addEventListener('change', () => onChange(Number(select.value)));
  wrap.append(select);
  return wrap;
}

/** Draws the attention view; returns the number of heads per attention layer. */
function renderAttention(ids: number[]): Map<number, number> {
  const view = $('view-attention');
  view.replaceChildren();
  const patterns = attentionPatterns(state.lm!, ids);
  if (patterns.size === 0) {
    view.textContent = 'This model has no attention layers.';
    return new Map();
  }
  const labels = tokenLabels(ids);
  const grid = document.createElement('div');
  grid.className = 'grid';
  const show = (layer: number) => grid.replaceChildren(
    ...patterns.get(layer)!.map((probs, h) => heatmap(probs, { title: `layer ${layer}, head ${h}`, rows: labels, cols: labels })),
  );
  view.append(layerSelect([...patterns.keys()], show), grid);
  show([...patterns.keys()][0]!);
  return new Map([...patterns].map(([layer, heads]) => [layer, heads.length]));
}

function renderMamba(ids: number[]): void {
  const view = $('view-mamba');
  view.replaceChildren();
  const internals = mambaInternals(state.lm!, ids);
  if (internals.size === 0) {
    view.textContent = 'This model has no Mamba layers.';
    return;
  }
  const labels = tokenLabels(ids);
  const grid = document.createElement('div');
  grid.className = 'grid';
  const show = (layer: number) => {
    const m = internals.get(layer)!;
    const channels = m.delta.map((_, c) => `channel ${c}`);
    const opts = (title: string) => ({ title: `layer ${layer}: ${title}`, rows: channels, cols: labels, cell: [22, 4] as [number, number] });
    grid.replaceChildren(heatmap(m.delta, opts('Δ per channel over time')), heatmap(m.gate, opts('gate SiLU(z)')), heatmap(m.stateNorm, opts('SSM state norm ‖h‖ after each token')));
  };
  view.append(layerSelect([...internals.keys()], show), grid);
  show([...internals.keys()][0]!);
}

function renderLens(ids: number[]): void {
  const view = $('view-lens');
  const rows = logitLens(state.lm!, ids);
  state.lens = rows;
  const labels = tokenLabels(ids);
  const table = document.createElement('table');
  table.id = 'lens-table';
  table.innerHTML = `<tr><th>layer</th>${labels.map((l) => `<th>${escape(l)}</th>`).join('')}</tr>`;
  rows.forEach((row, layer) => {
    const tr = document.createElement('tr');
    tr.innerHTML = `<th>${layer}</th>` + row.map((cell) => {
      const tops = tokenLabels(cell.ids);
      const title = tops.map((t, k) => `${t} ${(cell.probs[k]! * 100).toFixed(1)}%`).join('\n');
      return `<td title="${escape(title)}" data-top="${cell.ids[0]}">${escape(tops[0]!)} <small>${(cell.probs[0]! * 100).toFixed(0)}%</small></td>`;
    }).join('');
    table.append(tr);
  });
  view.replaceChildren(Object.assign(document.createElement('p'), { textContent: 'Top next token at each position, reading each layer\'s residual stream through the final norm and the LM head (hover for the top 5).' }), table);
}

function renderNorms(ids: number[]): void {
  const norms = hiddenNorms(state.lm!, ids);
  const labels = tokenLabels(ids);
  const layers = norms.map((_, i) => (i === 0 ? 'embeddings' : `layer ${i - 1}`));
  const series = Object.fromEntries(labels.map((l, t) => [`${t}: ${l}`, norms.map((row) => row[t]!)]));
  $('view-norms').replaceChildren(
    heatmap(norms, { title: '‖residual stream‖ per layer (rows) and position (columns)', rows: layers, cols: labels }),
    lineChart(series, layers.map((l) => l.replace('layer ', 'L')), 'norm across layers, one line per position'),
  );
}

function renderAblation(headCounts: Map<number, number>): void {
  const view = $('view-ablation');
  const kinds = layerKinds(state.lm!);
  const target = document.createElement('select');
  target.id = 'ablation-target';
  for (let i = 0; i < kinds.count; i++) target.add(new Option(`layer ${i}: zero the mixer`, `${i}`));
  for (const [i, heads] of headCounts) {
    for (let h = 0; h < heads; h++) target.add(new Option(`layer ${i}: zero head ${h}`, `${i}:${h}`));
  }
  const apply = Object.assign(document.createElement('button'), { id: 'ablation-apply', textContent: 'Compare next-token logits' });
  const keep = Object.assign(document.createElement('input'), { type: 'checkbox', id: 'ablation-keep' });
  const keepLabel = document.createElement('label');
  keepLabel.append(keep, ' keep it on for generation');
  const result = Object.assign(document.createElement('div'), { id: 'ablation-result' });
  const parse = () => {
    const [layer, head] = target.value.split(':').map(Number);
    return { layer: layer!, head };
  };
  apply.addEventListener('click', action(async () => {
    const r = compareAblation(state.lm!, promptIds(), parse());
    state.ablationResult = r;
    const table = (cell: LensCell) => tokenLabels(cell.ids).map((t, k) => `${escape(t)} ${(cell.probs[k]! * 100).toFixed(1)}%`).join('<br>');
    result.innerHTML = `<p>largest change of a logit: <b id="ablation-delta">${r.maxLogitChange.toPrecision(4)}</b></p>
      <table><tr><th>before</th><th>after</th></tr><tr><td>${table(r.before)}</td><td>${table(r.after)}</td></tr></table>`;
  }));
  keep.addEventListener('change', () => {
    state.ablation?.remove();
    state.ablation = keep.checked ? addAblation(state.lm!, parse()) : undefined;
  });
  view.replaceChildren(target, ' ', apply, ' ', keepLabel, result);
}

function escape(s: string): string {
  return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

async function analyse(): Promise<void> {
  const ids = promptIds();
  // With the ablation kept on, every view shows the ablated model.
  const heads = renderAttention(ids);
  renderMamba(ids);
  renderLens(ids);
  renderNorms(ids);
  renderAblation(heads);
  document.body.dataset.analysed = String(Date.now());
}

const tabs = Array.from(document.querySelectorAll<HTMLButtonElement>('nav button'));
for (const button of tabs) {
  button.addEventListener('click', () => {
    for (const b of tabs) b.setAttribute('aria-selected', String(b === button));
    for (const s of Array.from(document.querySelectorAll<HTMLElement>('section.view'))) s.hidden = s.id !== `view-${button.dataset.view}`;
  });
}
$('model').addEventListener('change', () => {
  $('hub-name').hidden = ($('model') as HTMLSelectElement).value !== 'hub';
});
$('load').addEventListener('click', action(load));
$('generate').addEventListener('click', action(generate));
$('analyse').addEventListener('click', action(analyse));
document.body.dataset.ready = 'true';
