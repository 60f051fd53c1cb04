import { Attention, type AttentionOptions } from '../../layers/attention.js';
import { FeedForward } from '../../layers/feed-forward.js';
import { defaultDtRank, MAMBA_DEFAULTS, MambaMixer } from '../../layers/mamba.js';
import { MixtureOfExperts } from '../../layers/moe.js';
import type { Layer } from '../../layers/module.js';
import { LayerNorm, RMSNorm } from '../../layers/norm.js';
import { ACTIVATION_NAMES } from '../../ops/activation.js';
import type { FeedForwardOptions } from '../../layers/feed-forward.js';
import type { MambaOptions } from '../../layers/mamba.js';
import type { MixtureOfExpertsOptions } from '../../layers/moe.js';
import { layerRegistry, type PartDescriber, type PartFactory, type PartKind, type PartSpec } from '../../layers/registry.js';
import type { RopeScaling, RotaryOptions } from '../../layers/rotary.js';
import type { KeyList } from '../../util/options.js';
import { CONFIG_LIMITS, ConfigError, ConfigReader } from '../config-keys.js';
import { checkHeads, innerWidth } from '../checks.js';
import { checkConfigKeys } from './config.js';

import type { SizeTally } from '../size.js';

/**
 * The parts Tessera ships, registered by name for hybrid configs. Each entry reads its options
 * (camelCase, defaults explicit here) and, for layers an HF architecture built directly, says
 * which options rebuild them, so any model built from these blocks can be saved as a hybrid.
 */

/**
 * Reject option names the part does not know, so a typo is an error instead of a silent default.
 * `checkPart` runs the same check first with the layer's name; this one guards a part built
 * straight from the registry.
 */
function only(options: Record<string, unknown>, allowed: KeyList<object>): ConfigReader {
  checkConfigKeys(options, allowed, 'options');
  return new ConfigReader(options, 'part');
}

// A part's options are its block's options less what the model supplies (width, gating).
const ATTENTION_OPTIONS = {
  numHeads: true, numKvHeads: true, headDim: true, qkvBias: true, outputBias: true, causal: true, rotary: true,
} as const satisfies KeyList<Omit<AttentionOptions, 'hiddenSize'>>;
const ROTARY_OPTIONS = { dim: true, base: true, scaling: true } as const satisfies KeyList<RotaryOptions>;
type Scaling<T extends RopeScaling['type']> = KeyList<Extract<RopeScaling, { type: T }>>;
const SCALING_OPTIONS: { [T in RopeScaling['type']]: Scaling<T> } = {
  default: { type: true },
  linear: { type: true, factor: true },
  dynamic: { type: true, factor: true, maxPositions: true },
  llama3: { type: true, factor: true, lowFreqFactor: true, highFreqFactor: true, originalMaxPositions: true },
};
const MAMBA_OPTIONS = {
  stateSize: true, convKernel: true, expand: true, dtRank: true, convBias: true, projBias: true, innerNormEps: true,
} as const satisfies KeyList<Omit<MambaOptions, 'hiddenSize'>>;
const FEED_FORWARD_OPTIONS = { intermediateSize: true, activation: true, bias: true } as const satisfies KeyList<Omit<FeedForwardOptions, 'hiddenSize' | 'gated'>>;
const MOE_OPTIONS = {
  numExperts: true, topK: true, intermediateSize: true, activation: true, renormalize: true,
} as const satisfies KeyList<Omit<MixtureOfExpertsOptions, 'hiddenSize'>>;
const NORM_OPTIONS = { eps: true } as const;

const ATTENTION_KEYS = { hidden: 'hiddenSize', heads: 'numHeads', kvHeads: 'numKvHeads', headDim: 'headDim' };

/** A rotary `scaling` as {@link RopeScaling} (the camelCase form `describeModel` writes), checked field by field. */
function ropeScaling(raw: Record<string, unknown> | undefined): RopeScaling {
  if (raw === undefined) return { type: 'default' };
  const c = new ConfigReader(raw, 'rotary.scaling');
  const type = c.oneOf('type', ['default', 'linear', 'dynamic', 'llama3'] as const);
  checkConfigKeys(raw, SCALING_OPTIONS[type], `rotary.scaling (${type})`);
  switch (type) {
    case 'default':
      return { type };
    case 'linear':
      return { type, factor: c.positive('factor') };
    case 'dynamic':
      return { type, factor: c.positive('factor'), maxPositions: c.size('maxPositions', undefined, CONFIG_LIMITS.positions) };
    case 'llama3': {
      const lowFreqFactor = c.positive('lowFreqFactor');
      const highFreqFactor = c.positive('highFreqFactor');
      if (highFreqFactor === lowFreqFactor) throw c.error('highFreqFactor', `must differ from 'lowFreqFactor' (both ${lowFreqFactor})`);
      return { type, factor: c.positive('factor'), lowFreqFactor, highFreqFactor, originalMaxPositions: c.size('originalMaxPositions', undefined, CONFIG_LIMITS.positions) };
    }
  }
}

function attentionOptions(options: Record<string, unknown>, hiddenSize: number): AttentionOptions {
  const c = only(options, ATTENTION_OPTIONS);
  const numHeads = c.size('numHeads');
  const numKvHeads = c.size('numKvHeads', numHeads);
  const headDim = c.has('headDim') ? c.size('headDim') : undefined;
  checkHeads(c, hiddenSize, numHeads, { kvHeads: numKvHeads, headDimGiven: headDim !== undefined, keys: ATTENTION_KEYS });
  let rotary: RotaryOptions | undefined;
  const r = c.object('rotary');
  if (r !== undefined) {
    checkConfigKeys(r, ROTARY_OPTIONS, 'rotary');
    const rc = new ConfigReader(r, 'rotary');
    const width = headDim ?? hiddenSize / numHeads;
    const dim = rc.size('dim', width);
    // Rotary turns pairs (first half, second half) of the first `dim` channels of each head.
    if (dim % 2 !== 0 || dim > width) throw rc.error('dim', `must be even and at most the head width ${width}, got ${dim}`);
    rotary = { dim, base: rc.positive('base', 10000), scaling: ropeScaling(rc.object('scaling')) };
  }
  return {
    hiddenSize,
    numHeads,
    numKvHeads,
    headDim,
    qkvBias: c.boolean('qkvBias', false),
    outputBias: c.boolean('outputBias', false),
    causal: c.boolean('causal', true),
    rotary,
  };
}

function describeAttention(layer: Layer): Record<string, unknown> | undefined {
  if (!(layer instanceof Attention)) return undefined;
  const { hiddenSize: _h, ...options }: AttentionOptions = layer.options;
  return { ...options, headDim: layer.headDim };
}

function mambaOptions(options: Record<string, unknown>, hiddenSize: number): MambaOptions {
  const c = only(options, MAMBA_OPTIONS);
  const expand = c.size('expand', MAMBA_DEFAULTS.expand);
  innerWidth(c, expand, hiddenSize, 'expand', 'hiddenSize');
  return {
    hiddenSize,
    stateSize: c.size('stateSize', MAMBA_DEFAULTS.stateSize),
    convKernel: c.size('convKernel', MAMBA_DEFAULTS.convKernel),
    expand,
    dtRank: c.size('dtRank', defaultDtRank(hiddenSize)),
    convBias: c.boolean('convBias', MAMBA_DEFAULTS.convBias),
    projBias: c.boolean('projBias', MAMBA_DEFAULTS.projBias),
    innerNormEps: c.has('innerNormEps') ? c.positive('innerNormEps') : undefined,
  };
}

function feedForwardOptions(gated: boolean) {
  return (options: Record<string, unknown>, hiddenSize: number): FeedForwardOptions => {
    const c = only(options, FEED_FORWARD_OPTIONS);
    return {
      hiddenSize,
      intermediateSize: c.size('intermediateSize'),
      activation: c.oneOf('activation', ACTIVATION_NAMES, gated ? 'silu' : 'gelu'),
      gated,
      bias: c.boolean('bias', false),
    };
  };
}

function describeFeedForward(gated: boolean) {
  return (layer: Layer): Record<string, unknown> | undefined => {
    if (!(layer instanceof FeedForward) || layer.options.gated !== gated) return undefined;
    const { intermediateSize, activation, bias } = layer.options;
    return { intermediateSize, activation, bias: bias ?? false };
  };
}

function moeOptions(options: Record<string, unknown>, hiddenSize: number): MixtureOfExpertsOptions {
  const c = only(options, MOE_OPTIONS);
  const numExperts = c.size('numExperts', undefined, CONFIG_LIMITS.experts);
  return {
    hiddenSize,
    numExperts,
    topK: c.size('topK', undefined, numExperts),
    intermediateSize: c.size('intermediateSize'),
    activation: c.oneOf('activation', ACTIVATION_NAMES, 'silu'),
    renormalize: c.boolean('renormalize', false),
  };
}

function normEps(fallback: number) {
  return (options: Record<string, unknown>): number => only(options, NORM_OPTIONS).positive('eps', fallback);
}

/** One part Tessera ships: its option parser (which throws on any bad option) and its size. */
interface BuiltinPart {
  /** The option names it reads. */
  keys: KeyList<object>;
  create: PartFactory;
  check(options: Record<string, unknown>, hiddenSize: number, tally: SizeTally): void;
}

function part<O>(keys: KeyList<object>, parse: (options: Record<string, unknown>, hiddenSize: number) => O, build: (o: O, hiddenSize: number) => Layer, size: (o: O, tally: SizeTally, hiddenSize: number) => void): BuiltinPart {
  return {
    keys,
    create: (options, hiddenSize) => build(parse(options, hiddenSize), hiddenSize),
    check: (options, hiddenSize, tally) => size(parse(options, hiddenSize), tally, hiddenSize),
  };
}

const BUILTIN: Record<PartKind, Record<string, BuiltinPart>> = {
  mixer: {
    attention: part(ATTENTION_OPTIONS, attentionOptions, (o) => new Attention(o), (o, t) => t.attention(o)),
    mamba: part(MAMBA_OPTIONS, mambaOptions, (o) => new MambaMixer(o), (o, t) => t.mamba(o)),
  },
  ffn: {
    dense: part(FEED_FORWARD_OPTIONS, feedForwardOptions(false), (o) => new FeedForward(o), (o, t) => t.feedForward(o)),
    gated: part(FEED_FORWARD_OPTIONS, feedForwardOptions(true), (o) => new FeedForward(o), (o, t) => t.feedForward(o)),
    moe: part(MOE_OPTIONS, moeOptions, (o) => new MixtureOfExperts(o), (o, t) => t.moe(o)),
  },
  norm: {
    rmsnorm: part(NORM_OPTIONS, normEps(1e-6), (eps, h) => new RMSNorm(h, eps), (_eps, t, h) => t.norm('rmsnorm', h)),
    layernorm: part(NORM_OPTIONS, normEps(1e-5), (eps, h) => new LayerNorm(h, eps), (_eps, t, h) => t.norm('layernorm', h)),
  },
};

const KIND_LABEL: Record<PartKind, string> = { mixer: 'mixer', ffn: 'feed-forward', norm: 'norm' };

/**
 * Check a part spec before anything is built, with the errors building it would give, and add
 * what it would allocate to `tally`. A part a user registered is only checked to be registered
 * (its factory checks its options when built, and its size is unknown here). A built-in name
 * re-registered by a user is still checked as the built-in.
 */
export function checkPart(kind: PartKind, spec: unknown, hiddenSize: number, where: string, tally: SizeTally): void {
  const label = KIND_LABEL[kind];
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec) || typeof (spec as PartSpec).type !== 'string') {
    throw new ConfigError(`${where}: expected an object with a 'type' naming a ${label}, got ${JSON.stringify(spec)}`);
  }
  const { type, ...options } = spec as PartSpec;
  const registered = layerRegistry().names(kind);
  if (!registered.includes(type)) {
    throw new ConfigError(`${where}: unknown ${label} '${type}'; registered: ${registered.join(', ')} (register one with layerRegistry().register('${kind}', name, factory))`);
  }
  const builtin = BUILTIN[kind][type];
  if (builtin === undefined) return;
  checkConfigKeys(options, builtin.keys, `hybrid config ${where} (${type})`);
  try {
    builtin.check(options, hiddenSize, tally);
  } catch (err) {
    throw new ConfigError(`hybrid config ${where} (${type}): ${(err as Error).message}`, (err as ConfigError).key);
  }
}

function describeMoe(layer: Layer): Record<string, unknown> | undefined {
  if (!(layer instanceof MixtureOfExperts)) return undefined;
  const { hiddenSize: _h, renormalize, ...options } = layer.options;
  return { ...options, renormalize: renormalize ?? false };
}

const DESCRIBE: Record<PartKind, Record<string, PartDescriber>> = {
  mixer: {
    attention: describeAttention,
    mamba: (l) => {
      if (!(l instanceof MambaMixer)) return undefined;
      const { hiddenSize: _h, ...options } = l.options;
      return options;
    },
  },
  ffn: { dense: describeFeedForward(false), gated: describeFeedForward(true), moe: describeMoe },
  norm: {
    rmsnorm: (l) => (l instanceof RMSNorm ? { eps: l.eps } : undefined),
    layernorm: (l) => (l instanceof LayerNorm ? { eps: l.eps } : undefined),
  },
};

const registry = layerRegistry();
for (const kind of Object.keys(BUILTIN) as PartKind[]) {
  for (const [name, builtin] of Object.entries(BUILTIN[kind])) registry.register(kind, name, builtin.create, DESCRIBE[kind][name]);
}
