import * as tf from '@tensorflow/tfjs-core';
import { registerWasmTrainingKernels } from './wasm-kernels.js';

/**
 * tfjs-core's Node bundle registers no gradient functions (the `@tensorflow/tfjs` umbrella adds
 * them), so `tf.variableGrads` fails with "gradient function not found". The registrations live
 * in `@tensorflow/tfjs-core/dist/register_all_gradients.js`, whose ES modules import their
 * siblings without file extensions and by directory, which Node's ESM resolver refuses. A resolve
 * hook, limited to relative imports inside `@tensorflow/tfjs-core/dist/`, retries those with `.js`
 * and `/index.js`. The gradients register in tfjs's process-global registry, so the bundle sees
 * them.
 */
const RESOLVE_HOOK = `
import { existsSync } from 'node:fs';
const DIST = '/@tensorflow/tfjs-core/dist/';
export async function resolve(specifier, context, next) {
  if (specifier.startsWith('.') && String(context.parentURL).includes(DIST) && !specifier.endsWith('.js')) {
    for (const suffix of ['.js', '/index.js']) {
      const url = new URL(specifier + suffix, context.parentURL);
      if (existsSync(url)) return { url: url.href, format: 'module', shortCircuit: true };
    }
  }
  const resolved = await next(specifier, context);
  // The package declares no "type"; its dist files are ES modules.
  return resolved.url.includes(DIST) ? { ...resolved, format: 'module' } : resolved;
}`;

let loading: Promise<void> | undefined;

/**
 * Make tfjs gradients available, for training (distillation, steering vectors). Idempotent, and a
 * no-op where another package (`@tensorflow/tfjs`, tfjs-node) registered them. Not done at import
 * because loading the gradient modules takes one to two seconds that inference does not need.
 */
export function registerGradients(): Promise<void> {
  loading ??= (async () => {
    registerWasmTrainingKernels();
    if (gradientsRegistered()) return;
    const { createRequire, register } = await import('node:module');
    const { pathToFileURL } = await import('node:url');
    register(`data:text/javascript,${encodeURIComponent(RESOLVE_HOOK)}`);
    const file = createRequire(import.meta.url).resolve('@tensorflow/tfjs-core/dist/register_all_gradients.js');
    await import(/* @vite-ignore */ pathToFileURL(file).href);
    if (!gradientsRegistered()) throw new Error('could not register the tfjs gradient functions');
  })();
  return loading;
}

/** Whether tfjs gradient functions are registered (any package may have done it). */
export function gradientsRegistered(): boolean {
  return tf.getGradient('Neg') !== undefined;
}
