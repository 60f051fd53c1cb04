/**
 * From the unpickled top-level object to `name -> tensor view`: a state_dict is a (possibly
 * ordered) dict of tensors. Nested dicts (e.g. `{"model": state_dict}`) are flattened with '.',
 * the way torch names nested modules; non-tensor entries (ints, strings) carry no weights and are
 * skipped.
 */
import { describe, MAX_PICKLE_DEPTH, MAX_PICKLE_ITEMS, type PyValue } from './pickle.js';
import { TensorRef } from './torch-globals.js';

export function collectTensorRefs(root: PyValue, file: string): Map<string, TensorRef> {
  if (!(root instanceof Map)) {
    throw new Error(`${file}: the checkpoint holds ${describe(root)}, not a state_dict (a dict of tensors)`);
  }
  const out = new Map<string, TensorRef>();
  // Through its memo a pickle can make a dict contain itself (a cycle), nest dicts deeper than
  // the stack allows after they were built, or reach one dict many times (2^n paths through n
  // dicts): the walk keeps the dicts on its path, the depth limit and a budget of entries visited.
  let visits = 0;
  const walk = (d: Map<unknown, PyValue>, prefix: string, path: Set<Map<unknown, PyValue>>): void => {
    if (path.size >= MAX_PICKLE_DEPTH) throw new Error(`${file}: dicts nested more than ${MAX_PICKLE_DEPTH} deep under '${prefix}'; this is not a state_dict`);
    path.add(d);
    for (const [k, v] of d) {
      if (++visits > MAX_PICKLE_ITEMS) throw new Error(`${file}: the state_dict has more than ${MAX_PICKLE_ITEMS} entries once nested dicts are flattened`);
      const name = `${prefix}${String(k)}`;
      if (v instanceof TensorRef) {
        if (out.has(name)) throw new Error(`${file}: two tensors are named '${name}' once nested dicts are flattened`);
        out.set(name, v);
      } else if (v instanceof Map) {
        if (path.has(v)) throw new Error(`${file}: the dict at '${name}' contains itself; this is not a state_dict`);
        walk(v, `${name}.`, path);
      }
    }
    path.delete(d);
  };
  walk(root, '', new Set());
  return out;
}
