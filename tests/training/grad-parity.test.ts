// Gradient parity with Hugging Face PyTorch: d(loss)/d(parameter) for every parameter of the four
// tiny fixtures (tests/fixtures/*/grads/, computed by unmodified transformers v4.43.4 in float32; see
// tests/fixtures/README.md, "Gradients"), through the same path training takes: the model's own
// forward under tf.variableGrads (what Distiller's optimizer.minimize calls), the library's loss
// functions where one matches the fixture's definition, and each architecture's HF rename rules to
// pair the reference tensors with Tessera's parameters.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  architectureRegistry,
  AutoCausalLM,
  AutoEncoder,
  hiddenMseLoss,
  nextTokenCrossEntropy,
  registerGradients,
  renameParameter,
  type CausalLM,
  type EncoderModel,
  type TransformerModel,
} from '../../src/index.js';
import { fixture, ids, loadExpected, type Expected } from '../helpers.js';
import { readSafetensorsF32 } from '../helpers/read-safetensors.js';

/** `grads/expected.json`. */
interface GradExpected {
  loss: number;
  loss_definition: string;
  parameters: number;
}

/**
 * Tolerances, per gradient tensor t, with G the largest |HF gradient| over the whole model:
 * - the brief's criterion: max |Tessera − HF| ≤ 1e-4 × max(1, max |HF_t|);
 * - and, tighter for tensors whose gradients are small, ≤ 1e-4 × max |HF_t| (relative to the
 *   tensor's own largest gradient). The README says "~1e-5" here; 1e-5 does not hold for
 *   jamba-tiny, and the reference is the reason: its weights are scaled ×6, and finite differences
 *   of a float64 re-implementation show HF's float32 gradients there are themselves off by up to
 *   2.7e-5 (2e-5 relative: layer 0's x_proj, conv1d, in_proj, the embeddings), where Tessera's are
 *   closer to the float64 values (≤ 1.1e-5 off at the same entries). Measured worst relative errors (wasm, native): bert 1.2e-6,
 *   9.3e-7; llama 1.2e-6, 1.4e-6; mamba 2.2e-6, 1.2e-6; jamba 2.1e-5, 2.0e-5.
 * - Tensors whose true gradient is ~0 (max |HF_t| < 1e-6 G: only BERT's attention key biases,
 *   since softmax ignores a constant shift of the scores) must be ~0 in Tessera too: ≤ 1e-6 G.
 * The loss: 1e-5 relative (measured ≤ 1e-7).
 */
const LOSS_TOL = 1e-5;
const GRAD_TOL = 1e-4;
const NEAR_ZERO = 1e-6;

const MODELS = ['bert-tiny', 'llama-tiny', 'mamba-tiny', 'jamba-tiny'] as const;
type ModelName = (typeof MODELS)[number];

/** The `loss_definition`s this file implements (bertLoss, nextTokenCrossEntropy), as the fixtures word them. */
const LOSS_DEFINITIONS = {
  encoder: 'mean(last_hidden_state^2 over unmasked tokens) + mean(pooler_output^2)',
  causal: 'mean next-token cross-entropy over positions whose next token is unmasked (HF labels=input_ids, pad -> -100)',
};

interface GradStat {
  hf: string;
  tessera: string;
  maxAbsDiff: number;
  maxAbsRef: number;
  /** maxAbsDiff / max |HF| of this tensor (the README's kind of criterion). */
  relative: number;
  /** maxAbsDiff / max(1, max |HF|) (the brief's criterion). */
  scaled: number;
  /** The true gradient is ~0: max |HF| < NEAR_ZERO × the model's largest |HF|. */
  nearZero: boolean;
}

interface Report {
  loss: number;
  referenceLoss: number;
  stats: GradStat[];
}

function loadGradFixture(name: ModelName): { expected: GradExpected; grads: Map<string, { shape: number[]; data: Float32Array }> } {
  const dir = join(fixture(name), 'grads');
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as GradExpected;
  return { expected, grads: readSafetensorsF32(join(dir, 'grads.safetensors')) };
}

/** BERT: mean(last_hidden_state²) over unmasked tokens + mean(pooler_output²), by the library's MSE loss against zero. */
function bertLoss(model: EncoderModel, expected: Expected): tf.Scalar {
  const mask = ids(expected.attention_mask!);
  const out = model.forward(ids(expected.input_ids), { attentionMask: mask, tokenTypeIds: ids(expected.token_type_ids!) });
  const hidden = hiddenMseLoss(out.lastHiddenState, tf.zerosLike(out.lastHiddenState), { mask });
  const pooled = hiddenMseLoss(out.pooledOutput!, tf.zerosLike(out.pooledOutput!));
  return tf.add(hidden, pooled) as tf.Scalar;
}

function causalLoss(model: CausalLM, expected: Expected): tf.Scalar {
  // The mask where expected.json has one (llama-tiny: all ones); mamba-tiny and jamba-tiny have
  // none (HF's Mamba forward takes none; nothing in jamba-tiny's batch is padded).
  const options = expected.attention_mask === undefined ? {} : { attentionMask: ids(expected.attention_mask) };
  const out = model.forward(ids(expected.input_ids), options);
  // HF's `labels=input_ids` loss, by the library's fused cross-entropy (no one-hot).
  const mask = expected.attention_mask === undefined ? {} : { mask: ids(expected.attention_mask) };
  return nextTokenCrossEntropy(out.logits, ids(expected.input_ids), mask);
}

async function loadModel(name: ModelName): Promise<TransformerModel> {
  return name === 'bert-tiny' ? AutoEncoder.fromDir(fixture(name)) : AutoCausalLM.fromDir(fixture(name));
}

function lossOf(name: ModelName, model: TransformerModel, expected: Expected): tf.Scalar {
  return name === 'bert-tiny' ? bertLoss(model as EncoderModel, expected) : causalLoss(model as CausalLM, expected);
}

/**
 * Loss and gradients of one fixture model, compared tensor by tensor with the reference. Every
 * tensor this creates is freed before it returns (checked by the caller).
 */
async function measure(name: ModelName): Promise<Report> {
  const { expected: gradExpected, grads: reference } = loadGradFixture(name);
  expect(gradExpected.loss_definition).toBe(name === 'bert-tiny' ? LOSS_DEFINITIONS.encoder : LOSS_DEFINITIONS.causal);
  const expected = loadExpected(name);
  const config = JSON.parse(readFileSync(join(fixture(name), 'config.json'), 'utf8')) as Record<string, unknown>;
  const architecture = architectureRegistry().forConfig(config, name);
  const model = await loadModel(name);
  try {
    const params = new Map(model.namedParameters());
    const variables = [...params.values()];
    expect(variables.every((v) => v.trainable)).toBe(true);
    const { value, grads } = tf.variableGrads(() => lossOf(name, model, expected), variables);
    try {
      const byPath = new Map([...params].map(([path, v]) => [path, grads[v.name]]));
      expect(reference.size).toBe(gradExpected.parameters);
      // A tied LM head has no parameter of its own: both uses of the embedding matrix sum into the
      // one gradient, which the reference stores once, under the embedding's name.
      const tied = name !== 'bert-tiny' && (model as CausalLM).tiedEmbeddings;
      expect(tied).toBe(name === 'mamba-tiny');
      expect(reference.has('lm_head.weight')).toBe(name !== 'bert-tiny' && !tied);

      const stats: GradStat[] = [];
      const covered = new Set<string>();
      for (const [hf, ref] of reference) {
        const tessera = renameParameter(hf, architecture.hfNames);
        expect(tessera, `${hf} has no rename rule`).toBeDefined();
        expect(params.has(tessera!), `${hf} -> ${tessera}: no such Tessera parameter`).toBe(true);
        expect(covered.has(tessera!), `${tessera} is named by two reference tensors`).toBe(false);
        covered.add(tessera!);
        const grad = byPath.get(tessera!);
        expect(grad, `${tessera} (${hf}) got no gradient`).toBeDefined();
        expect(grad!.shape, `${tessera} (${hf}) gradient shape`).toEqual(ref.shape);
        const got = grad!.dataSync();
        let maxAbsDiff = 0;
        let maxAbsRef = 0;
        for (let i = 0; i < ref.data.length; i++) {
          const d = Math.abs(got[i]! - ref.data[i]!);
          if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? Infinity : d;
          maxAbsRef = Math.max(maxAbsRef, Math.abs(ref.data[i]!));
        }
        stats.push({ hf, tessera: tessera!, maxAbsDiff, maxAbsRef, relative: maxAbsDiff / maxAbsRef, scaled: maxAbsDiff / Math.max(1, maxAbsRef), nearZero: false });
      }
      const largest = Math.max(...stats.map((s) => s.maxAbsRef));
      for (const s of stats) s.nearZero = s.maxAbsRef < NEAR_ZERO * largest;
      // ... and vice versa: every Tessera parameter is one of the reference's.
      expect([...params.keys()].filter((p) => !covered.has(p)), 'Tessera parameters without a reference gradient').toEqual([]);
      return { loss: value.dataSync()[0]!, referenceLoss: gradExpected.loss, stats };
    } finally {
      tf.dispose([value, ...Object.values(grads)]);
    }
  } finally {
    model.dispose();
  }
}

/** The figures of one model, printed with TESSERA_GRAD_REPORT=1 (for docs and reviews). */
function summary(name: string, report: Report): string {
  const worst = (key: 'relative' | 'scaled'): GradStat => report.stats.filter((s) => !s.nearZero).reduce((a, b) => (b[key] > a[key] ? b : a));
  const r = worst('relative');
  const s = worst('scaled');
  const largest = Math.max(...report.stats.map((x) => x.maxAbsRef));
  const abs = Math.max(...report.stats.map((x) => x.maxAbsDiff));
  const zero = report.stats.filter((x) => x.nearZero).map((x) => `${x.hf} ${x.maxAbsDiff.toExponential(1)}`);
  return (
    `[${tf.getBackend()}] ${name}: loss ${report.loss} vs ${report.referenceLoss} (rel ${(Math.abs(report.loss - report.referenceLoss) / report.referenceLoss).toExponential(2)}); ` +
    `worst relative to the tensor's largest ${r.relative.toExponential(2)} (${r.hf}); ` +
    `worst 1e-4 × max(1, ·) criterion ${s.scaled.toExponential(2)} (${s.hf}); ` +
    `worst abs ${abs.toExponential(2)} = ${(abs / largest).toExponential(2)} of the largest gradient ${largest.toExponential(2)}` +
    (zero.length > 0 ? `; ~0 tensors: ${zero.join(', ')}` : '')
  );
}

beforeAll(async () => {
  await registerGradients();
});

it('runs on the backend this project asked for', () => {
  expect(tf.getBackend()).toBe(process.env.TESSERA_BACKEND ?? 'wasm');
});

describe('gradients match HF PyTorch', () => {
  for (const name of MODELS) {
    it(`${name}: the loss and d loss / d parameter for every parameter`, async () => {
      const before = tf.memory().numTensors;
      const report = await measure(name);
      expect(tf.memory().numTensors).toBe(before);
      if (process.env.TESSERA_GRAD_REPORT === '1') console.log(summary(name, report));

      expect(Math.abs(report.loss - report.referenceLoss)).toBeLessThanOrEqual(LOSS_TOL * Math.abs(report.referenceLoss));
      const line = (s: GradStat): string => `${s.hf} (${s.tessera}): max abs diff ${s.maxAbsDiff}, max |ref| ${s.maxAbsRef}`;
      expect(report.stats.filter((s) => !(s.scaled <= GRAD_TOL)).map(line), 'off by more than 1e-4 × max(1, max |ref|)').toEqual([]);
      expect(report.stats.filter((s) => !s.nearZero && !(s.relative <= GRAD_TOL)).map(line), "off by more than 1e-4 of the tensor's largest gradient").toEqual([]);
      // Only the attention key biases have a vanishing true gradient; Tessera's must vanish too.
      const nearZero = report.stats.filter((s) => s.nearZero);
      expect(nearZero.map((s) => s.hf)).toEqual(name === 'bert-tiny' ? [0, 1].map((i) => `encoder.layer.${i}.attention.self.key.bias`) : []);
      const largest = Math.max(...report.stats.map((s) => s.maxAbsRef));
      expect(nearZero.filter((s) => !(s.maxAbsDiff <= NEAR_ZERO * largest)).map(line), 'should be ~0').toEqual([]);
    });
  }
});
