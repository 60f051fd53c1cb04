// The test page's script: Tessera's browser entry on window, for page.evaluate calls.
import * as tessera from '../../src/browser.js';
import * as tf from '@tensorflow/tfjs-core';

(globalThis as unknown as { tessera: typeof tessera; tf: typeof tf }).tessera = tessera;
(globalThis as unknown as { tf: typeof tf }).tf = tf;
document.body.dataset.ready = 'true';
