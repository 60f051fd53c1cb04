/**
 * From the unpickled top-level object to `name -> tensor view`: a state_dict is a (possibly
 * ordered) dict of tensors. Nested dicts (e.g. `{"model": state_dict}`) are flattened with '.',
 * the way torch names nested modules; non-tensor entries (ints, strings) carry no weights and are
 * skipped.
 */
import { describe, type PyValue } from './pickle.js';
import { TensorRef } from './torch-globals.js';

export function collectTensorRefs(root: PyValue, file: string): Map<string, TensorRef> {
  if (!(root instanceof Map)) {
    throw new Error(`${file}: the checkpoint holds ${describe(root)}, not a state_dict (a dict of tensors)`);
  }
  const out = new Map<string, TensorRef>();
  const walk = (d: Map<unknown, PyValue>, prefix: string): void => {
    for (const [k, v] of d) {
      const name = `${prefix}${String(k)}`;
      if (v instanceof TensorRef) out.set(name, v);
      else if (v instanceof Map) walk(v, `${name}.`);
    }
  };
  walk(root, '');
  return out;
}
