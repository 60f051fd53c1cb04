import { Attention, type AttentionOptions } from '../../layers/attention.js';
import { FeedForward } from '../../layers/feed-forward.js';
import { MambaMixer } from '../../layers/mamba.js';
import { MixtureOfExperts } from '../../layers/moe.js';
import type { Layer } from '../../layers/module.js';
import { LayerNorm, RMSNorm } from '../../layers/norm.js';
import { layerRegistry } from '../../layers/registry.js';
import type { RopeScaling, RotaryOptions } from '../../layers/rotary.js';
import { ConfigReader } from '../config-keys.js';

/**
 * The parts Tessera ships, registered by name for hybrid configs. Each entry reads its options
 * (camelCase, defaults explicit here) and, for layers an HF architecture built directly, says
 * which options rebuild them, so any model built from these blocks can be saved as a hybrid.
 */

/** Reject option names the part does not know, so a typo is an error instead of a silent default. */
function only(options: Record<string, unknown>, allowed: string[]): ConfigReader {
  const unknown = Object.keys(options).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) throw new Error(`unknown option(s) ${unknown.map((k) => `'${k}'`).join(', ')}; allowed: ${allowed.join(', ')}`);
  return new ConfigReader(options, 'part');
}

function attention(options: Record<string, unknown>, hiddenSize: number): Attention {
  const c = only(options, ['numHeads', 'numKvHeads', 'headDim', 'qkvBias', 'outputBias', 'causal', 'rotary']);
  const numHeads = c.integer('numHeads');
  const headDim = c.has('headDim') ? c.integer('headDim') : undefined; // else Attention derives (and checks) it
  let rotary: RotaryOptions | undefined;
  const r = c.object('rotary');
  if (r !== undefined) {
    const rc = new ConfigReader(r, 'rotary');
    const scaling = (rc.object('scaling') ?? { type: 'default' }) as RopeScaling;
    if (!['default', 'linear', 'dynamic', 'llama3'].includes(scaling.type)) {
      throw new Error(`rotary.scaling.type must be 'default', 'linear', 'dynamic' or 'llama3', got ${JSON.stringify(scaling.type)}`);
    }
    rotary = { dim: rc.integer('dim', headDim ?? hiddenSize / numHeads), base: rc.number('base', 10000), scaling };
  }
  return new Attention({
    hiddenSize,
    numHeads,
    numKvHeads: c.integer('numKvHeads', numHeads),
    headDim,
    qkvBias: c.boolean('qkvBias', false),
    outputBias: c.boolean('outputBias', false),
    causal: c.boolean('causal', true),
    rotary,
  });
}

function describeAttention(layer: Layer): Record<string, unknown> | undefined {
  if (!(layer instanceof Attention)) return undefined;
  const { hiddenSize: _h, ...options }: AttentionOptions = layer.options;
  return { ...options, headDim: layer.headDim };
}

function mamba(options: Record<string, unknown>, hiddenSize: number): MambaMixer {
  const c = only(options, ['stateSize', 'convKernel', 'expand', 'dtRank', 'convBias', 'projBias', 'innerNormEps']);
  return new MambaMixer({
    hiddenSize,
    stateSize: c.integer('stateSize', 16),
    convKernel: c.integer('convKernel', 4),
    expand: c.integer('expand', 2),
    dtRank: c.integer('dtRank', Math.ceil(hiddenSize / 16)),
    convBias: c.boolean('convBias', true),
    projBias: c.boolean('projBias', false),
    innerNormEps: c.has('innerNormEps') ? c.number('innerNormEps') : undefined,
  });
}

function feedForward(gated: boolean) {
  return (options: Record<string, unknown>, hiddenSize: number): FeedForward => {
    const c = only(options, ['intermediateSize', 'activation', 'bias']);
    return new FeedForward({
      hiddenSize,
      intermediateSize: c.integer('intermediateSize'),
      activation: c.string('activation', gated ? 'silu' : 'gelu'),
      gated,
      bias: c.boolean('bias', false),
    });
  };
}

function describeFeedForward(gated: boolean) {
  return (layer: Layer): Record<string, unknown> | undefined => {
    if (!(layer instanceof FeedForward) || layer.options.gated !== gated) return undefined;
    const { intermediateSize, activation, bias } = layer.options;
    return { intermediateSize, activation, bias: bias ?? false };
  };
}

function moe(options: Record<string, unknown>, hiddenSize: number): MixtureOfExperts {
  const c = only(options, ['numExperts', 'topK', 'intermediateSize', 'activation', 'renormalize']);
  return new MixtureOfExperts({
    hiddenSize,
    numExperts: c.integer('numExperts'),
    topK: c.integer('topK'),
    intermediateSize: c.integer('intermediateSize'),
    activation: c.string('activation', 'silu'),
    renormalize: c.boolean('renormalize', false),
  });
}

function describeMoe(layer: Layer): Record<string, unknown> | undefined {
  if (!(layer instanceof MixtureOfExperts)) return undefined;
  const { hiddenSize: _h, renormalize, ...options } = layer.options;
  return { ...options, renormalize: renormalize ?? false };
}

const registry = layerRegistry();
registry.register('mixer', 'attention', attention, describeAttention);
registry.register('mixer', 'mamba', mamba, (l) => {
  if (!(l instanceof MambaMixer)) return undefined;
  const { hiddenSize: _h, ...options } = l.options;
  return options;
});
registry.register('ffn', 'dense', feedForward(false), describeFeedForward(false));
registry.register('ffn', 'gated', feedForward(true), describeFeedForward(true));
registry.register('ffn', 'moe', moe, describeMoe);
registry.register(
  'norm',
  'rmsnorm',
  (o, h) => new RMSNorm(h, only(o, ['eps']).number('eps', 1e-6)),
  (l) => (l instanceof RMSNorm ? { eps: l.eps } : undefined),
);
registry.register(
  'norm',
  'layernorm',
  (o, h) => new LayerNorm(h, only(o, ['eps']).number('eps', 1e-5)),
  (l) => (l instanceof LayerNorm ? { eps: l.eps } : undefined),
);
