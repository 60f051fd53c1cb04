// The storage loaders (the browser entry's Auto* classes) run in Node too: over a folder, and over
// the hub stand-in with an in-memory Cache API, checking revisions, the cache and offline mode.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { AutoCausalLM, disposeOutput, OfflineCacheMissError, ModelNotFoundError } from '../../src/index.js';
import { StorageAutoCausalLM, StorageAutoTokenizer, loadFromStorage, readStorageWeights } from '../../src/loaders/storage/auto.js';
import { folderStorage } from '../../src/loaders/storage/folder.js';
import { hubStorage, urlStorage, type CacheLike } from '../../src/browser.js';
import { fixture, ids, loadExpected, maxAbsDiff } from '../helpers.js';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';
import { tokenizerJson } from '../generation/text-fixture.js';
import { UnknownKeyError } from '../../src/util/options.js';

/** The Cache API's match/put over a Map, as a browser's cache behaves for these GETs. */
function memoryCache(): CacheLike & { keys: () => string[] } {
  const entries = new Map<string, Uint8Array>();
  const key = (r: RequestInfo | URL): string => (typeof r === 'string' ? r : r instanceof URL ? r.href : r.url);
  return {
    async match(r) {
      const hit = entries.get(key(r));
      return hit === undefined ? undefined : new Response(hit.slice());
    },
    async put(r, response) {
      entries.set(key(r), new Uint8Array(await response.arrayBuffer()));
    },
    keys: () => [...entries.keys()],
  } as CacheLike & { keys: () => string[] };
}

const hub = new FakeHub();
const LLAMA_V1 = commitHash('llama-v1');
const LLAMA_V2 = commitHash('llama-v2');

beforeAll(async () => {
  await hub.start();
  const files = folderFiles(fixture('llama-tiny'));
  files.delete('expected.json');
  files.set('tokenizer.json', Buffer.from(JSON.stringify(tokenizerJson())));
  files.set('tokenizer_config.json', Buffer.from(JSON.stringify({ tokenizer_class: 'LlamaTokenizer', bos_token: '<s>', eos_token: '</s>', unk_token: '<unk>', add_bos_token: true })));
  const repo = hub.addRepo('tessera/llama-tiny', LLAMA_V1, files);
  // A second commit with other weights (zeroed), reachable by hash only: pinning must pick it.
  const zeroed = new Map(files);
  const st = files.get('model.safetensors')!;
  const headerEnd = 8 + Number(st.readBigUInt64LE(0));
  zeroed.set('model.safetensors', Buffer.concat([st.subarray(0, headerEnd), Buffer.alloc(st.length - headerEnd)]));
  repo.commits.set(LLAMA_V2, zeroed);
});
afterAll(() => hub.stop());

describe('storage loaders', () => {
  it('load a folder through folderStorage with the same logits as fromDir, and HF within 1e-4', async () => {
    const expected = loadExpected('llama-tiny');
    const before = tf.memory().numTensors;
    const viaStorage = await StorageAutoCausalLM.fromStorage(folderStorage(fixture('llama-tiny')));
    const viaDir = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    const input = ids(expected.input_ids);
    const a = viaStorage.forward(input);
    const b = viaDir.forward(input);
    expect(maxAbsDiff(a.logits, b.logits.arraySync() as number[][][])).toBe(0);
    expect(maxAbsDiff(a.logits, expected.logits!)).toBeLessThan(1e-4);
    disposeOutput(a);
    disposeOutput(b);
    input.dispose();
    viaStorage.dispose();
    viaDir.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('load by name from the hub stand-in, then offline from the cache with no request', async () => {
    const cache = memoryCache();
    const expected = loadExpected('llama-tiny');
    const lm = await StorageAutoCausalLM.fromHfHub('tessera/llama-tiny', { endpoint: hub.endpoint, cache, tokenizer: true });
    const input = ids(expected.input_ids);
    const out = lm.forward(input);
    expect(maxAbsDiff(out.logits, expected.logits!)).toBeLessThan(1e-4);
    disposeOutput(out);
    expect(cache.keys().some((k) => k.includes(`/resolve/${LLAMA_V1}/model.safetensors`))).toBe(true);
    // The attached tokenizer generates text.
    const text = await lm.generate('once upon a time', { maxNewTokens: 4 });
    expect(typeof text).toBe('string');
    lm.dispose();

    const requests = hub.log.length;
    const offline = await StorageAutoCausalLM.fromHfHub('tessera/llama-tiny', { endpoint: hub.endpoint, cache, offline: true });
    expect(hub.log.length).toBe(requests);
    const again = offline.forward(input);
    expect(maxAbsDiff(again.logits, expected.logits!)).toBeLessThan(1e-4);
    disposeOutput(again);
    input.dispose();
    offline.dispose();
    // With the tokenizer too: the optional files the repo lacks (generation_config.json,
    // vocab.txt, ...) were remembered as missing, so offline asks nothing and fails nothing.
    const withTokenizer = await StorageAutoCausalLM.fromHfHub('tessera/llama-tiny', { endpoint: hub.endpoint, cache, offline: true, tokenizer: true });
    expect(hub.log.length).toBe(requests);
    expect(typeof (await withTokenizer.generate('once upon a time', { maxNewTokens: 2 }))).toBe('string');
    withTokenizer.dispose();
  });

  it('read files at the commit a revision names', async () => {
    const storage = await hubStorage('tessera/llama-tiny', { endpoint: hub.endpoint, revision: LLAMA_V2, cache: false });
    expect(storage.location).toContain(LLAMA_V2.slice(0, 10));
    const tensors = await readStorageWeights(storage);
    expect([...tensors.get('model.embed_tokens.weight')!.data].every((v) => v === 0)).toBe(true);
    expect(await storage.read('no-such-file.json')).toBeUndefined();
  });

  it('fail clearly: offline without a cache entry, an unknown model, a bad name, an unknown option', async () => {
    const before = tf.memory().numTensors;
    await expect(StorageAutoCausalLM.fromHfHub('tessera/llama-tiny', { endpoint: hub.endpoint, cache: memoryCache(), offline: true })).rejects.toThrow(OfflineCacheMissError);
    await expect(StorageAutoCausalLM.fromHfHub('tessera/nothing', { endpoint: hub.endpoint, cache: false })).rejects.toThrow(ModelNotFoundError);
    await expect(hubStorage('../etc/passwd', { endpoint: hub.endpoint })).rejects.toThrow(/not a Hugging Face model name/);
    await expect(StorageAutoCausalLM.fromHfHub('tessera/llama-tiny', { endpoint: hub.endpoint, revison: 'main' } as never)).rejects.toThrow(UnknownKeyError);
    await expect(StorageAutoCausalLM.fromStorage(folderStorage(fixture('mamba-ssm-tiny')))).rejects.toThrow(/PyTorch \.bin weights, which load in Node only/);
    await expect(loadFromStorage(folderStorage(fixture('bert-tiny')), 'encoder', { tokenizer: true })).rejects.toThrow(/tokenizer option is for AutoCausalLM/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('read a tokenizer over a base URL and encode as the folder tokenizer does', async () => {
    const url = `${hub.endpoint}/tessera/llama-tiny/resolve/${LLAMA_V1}`;
    const tok = await StorageAutoTokenizer.fromUrl(url, { cache: false });
    const enc = tok.encode(['hello world'], { padding: false });
    expect(enc.ids[0]![0]).toBe(1); // <s>
    expect(tok.decode(enc.ids[0]!, { skipSpecialTokens: true })).toBe('hello world');
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    await expect(urlStorage(url, { cahce: false } as never)).rejects.toThrow(UnknownKeyError);
    // A path (say, a shard named by an index file) cannot leave the base URL.
    const storage = await urlStorage(url, { cache: false });
    for (const path of ['https://elsewhere.example/x.safetensors', '%2e%2e/%2e%2e/x', 'a//b', 'a?b', '../x', 'a\\b']) {
      await expect(storage.read(path), path).rejects.toThrow(/is not a plain relative file path/);
    }
  });
});

describe('urlStorage and the cache', () => {
  it('fetches a URL anew while online, and reads its cached copy offline or when the server is unreachable', async () => {
    const cache = memoryCache();
    let body = 'one';
    let reachable = true;
    const fetchStub: typeof fetch = async (input) => {
      if (!reachable) throw new TypeError('fetch failed');
      return String(input).endsWith('/a.txt') ? new Response(body) : new Response('no', { status: 404 });
    };
    const storage = await urlStorage('http://127.0.0.1:9/model', { cache, fetch: fetchStub });
    const text = async (s: typeof storage) => new TextDecoder().decode(await s.read('a.txt'));
    expect(await text(storage)).toBe('one');
    body = 'two';
    expect(await text(storage)).toBe('two'); // a URL's content can change: no stale copy while online
    reachable = false;
    expect(await text(storage)).toBe('two');
    const offline = await urlStorage('http://127.0.0.1:9/model', { cache, fetch: fetchStub, offline: true });
    expect(await text(offline)).toBe('two');
    await expect(offline.read('b.txt')).rejects.toThrow(OfflineCacheMissError);
    expect(await (await urlStorage('http://127.0.0.1:9/model', { cache: false, fetch: async () => new Response('', { status: 404 }) })).read('c.txt')).toBeUndefined();
  });
});
