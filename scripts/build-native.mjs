#!/usr/bin/env node
// Install-time build of the optional native backend (native/). It never fails the install: when
// OpenBLAS or a compiler is missing, or the build breaks, it prints one line saying why and Tessera
// falls back to the wasm backend. TESSERA_SKIP_NATIVE=1 skips it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const log = join(root, 'native', 'build-native.log');
const hint = 'run scripts/install-native-deps.sh (as root), then npm run build:native';

function done(message) {
  console.log(`tessera: ${message}`);
  process.exit(0);
}

if (process.env.TESSERA_SKIP_NATIVE) done('native backend skipped (TESSERA_SKIP_NATIVE is set); using wasm');

// Probe: compile and link a call into OpenBLAS, so a missing header or library is named as such
// rather than buried in node-gyp's output.
const probeDir = mkdtempSync(join(tmpdir(), 'tessera-blas-'));
try {
  const src = join(probeDir, 'probe.c');
  writeFileSync(src, '#include <cblas.h>\nint main(void){float x=1;return (int)cblas_sdot(1,&x,1,&x,1)-1;}\n');
  const cc = process.env.CC ?? 'cc';
  const probe = spawnSync(cc, [src, '-o', join(probeDir, 'probe'), '-lopenblas'], { encoding: 'utf8' });
  if (probe.error) done(`native backend skipped: no C compiler (${cc}: ${probe.error.code}); ${hint}`);
  if (probe.status !== 0) {
    const first = (probe.stderr || '').split('\n').find((l) => /error/.test(l)) ?? 'link failed';
    const reason = first.replace(/^.*?error:\s*/, '').trim();
    done(`native backend skipped: OpenBLAS (cblas.h, -lopenblas) not usable (${reason}); ${hint}`);
  }
} finally {
  rmSync(probeDir, { recursive: true, force: true });
}

// npm puts the path of its bundled node-gyp in npm_config_node_gyp for lifecycle scripts.
const gyp = process.env.npm_config_node_gyp;
const [cmd, args] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const build = spawnSync(cmd, [...args, 'rebuild', '-C', join(root, 'native')], { encoding: 'utf8' });
writeFileSync(log, `${build.stdout ?? ''}${build.stderr ?? ''}${build.error ? String(build.error) : ''}`);
if (build.status !== 0) {
  done(`native backend skipped: node-gyp build failed (see native/build-native.log); using wasm`);
}
rmSync(log, { force: true });
done('native backend built (native/build/Release/tessera_native.node)');
