import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoEncoder, IdOutOfRangeError, UnknownKeyError, disposeOutput, type CausalLM, type EncoderModel, type ForwardOptions } from '../../src/index.js';
import { expectThrowsFlat, fixture } from '../helpers.js';

describe('forward options and ids', () => {
  let lm: CausalLM;
  let bert: EncoderModel;
  let ids: tf.Tensor2D;
  beforeAll(async () => {
    lm = (await AutoCausalLM.fromDir(fixture('llama-tiny'))) as CausalLM;
    bert = await AutoEncoder.fromDir(fixture('bert-tiny'));
    ids = tf.tensor2d([[1, 5, 9]], undefined, 'int32');
    disposeOutput(lm.forward(ids)); // warm-up: backends' one-time caches are not leaks
    disposeOutput(bert.forward(ids));
  });
  afterAll(() => {
    lm.dispose();
    bert.dispose();
    ids.dispose();
  });

  it('forward rejects an unknown option, naming the nearest', async () => {
    const mask = tf.ones([1, 3], 'int32') as tf.Tensor2D;
    const options = { attentionMsk: mask } as unknown as ForwardOptions;
    await expectThrowsFlat(() => lm.forward(ids, options), UnknownKeyError, "forward options: unknown key 'attentionMsk'; did you mean 'attentionMask'?");
    await expectThrowsFlat(() => lm.forwardHidden(ids, options), UnknownKeyError, "forwardHidden options: unknown key 'attentionMsk'; did you mean 'attentionMask'?");
    await expectThrowsFlat(() => bert.forward(ids, { tokenTypeId: mask } as unknown as ForwardOptions), UnknownKeyError, "forward options: unknown key 'tokenTypeId'; did you mean 'tokenTypeIds'?");
    mask.dispose();
  });

  it('token type and learned position ids outside their tables name the place and the table size', async () => {
    const types = tf.tensor2d([[0, 1, 2]], undefined, 'int32');
    const typeCount = bert.embeddings.tokenType!.count;
    await expectThrowsFlat(() => bert.forward(ids, { tokenTypeIds: types }), IdOutOfRangeError, `tokenTypeIds[0, 2] is 2, outside the token types of ${typeCount} (valid ids 0 to ${typeCount - 1})`);
    const positionCount = bert.embeddings.position!.count;
    const positions = tf.tensor2d([[0, positionCount, 2]], undefined, 'int32');
    await expectThrowsFlat(
      () => bert.forward(ids, { positionIds: positions }),
      IdOutOfRangeError,
      `positionIds[0, 1] is ${positionCount}, outside the learned positions of ${positionCount} (valid ids 0 to ${positionCount - 1})`,
    );
    const second = tf.tensor2d([[1, 2], [3, -4]], undefined, 'int32');
    let caught: IdOutOfRangeError | undefined;
    try {
      lm.forward(second);
    } catch (err) {
      caught = err as IdOutOfRangeError;
    }
    expect([caught?.tensor, caught?.row, caught?.position, caught?.id, caught?.size]).toEqual(['inputIds', 1, 1, -4, lm.embeddings.word.count]);
    tf.dispose([types, positions, second]);
  });
});
