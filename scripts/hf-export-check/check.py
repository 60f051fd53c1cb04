"""Load each export of export.ts into its transformers class (config.json's `architectures`) and
compare the outputs with Tessera's. The weights are read with a small safetensors reader and
loaded with load_state_dict(strict=False) + tie_weights(), which is from_pretrained's key
matching without needing the safetensors package; the report lists missing and unexpected keys
(only tied weights may be missing)."""
import json, struct, sys
import numpy as np, torch, transformers
from transformers import AutoConfig

def read_safetensors(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header, data = json.loads(raw[8:8 + n]), raw[8 + n:]
    tensors = {}
    for name, entry in header.items():
        if name == '__metadata__': continue
        start, end = entry['data_offsets']
        assert entry['dtype'] == 'F32', entry['dtype']
        tensors[name] = torch.from_numpy(np.frombuffer(data[start:end], dtype=np.float32).copy()).reshape(entry['shape'])
    return tensors

out = sys.argv[1]
expected = json.load(open(f'{out}/outputs.json'))
ids = torch.tensor(expected['ids'])
report = {}
for name, values in expected['outputs'].items():
    config = AutoConfig.from_pretrained(f'{out}/{name}')
    cls = getattr(transformers, config.architectures[0])
    model = cls(config).eval()
    missing, unexpected = model.load_state_dict(read_safetensors(f'{out}/{name}/model.safetensors'), strict=False)
    model.tie_weights()
    with torch.no_grad():
        result = model(ids, use_cache=False) if 'ForCausalLM' in cls.__name__ else model(ids)
    theirs = (result.logits if hasattr(result, 'logits') else result.last_hidden_state).numpy().reshape(-1)
    report[name] = {'class': cls.__name__, 'missing': list(missing), 'unexpected': list(unexpected),
                    'max_abs_diff': float(np.abs(np.array(values, dtype=np.float32) - theirs).max())}
print(json.dumps(report, indent=1))
ok = all(r['max_abs_diff'] <= 1e-4 and not r['unexpected'] for r in report.values())
sys.exit(0 if ok else 1)
