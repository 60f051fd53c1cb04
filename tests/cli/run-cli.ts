// Runs the `tessera` binary as a user would (node bin/tessera.js ...), asynchronously so that a
// FakeHub served by the test process can answer it. The child reports the tfjs tensors it left
// (TESSERA_REPORT_TENSORS) and runs on the test process's backend, so its numbers can be
// compared with a reference computed here.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { activeBackend } from '../../src/kernels/backend.js';

export const BIN = join(import.meta.dirname, '..', '..', 'bin', 'tessera.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  /** stderr without the tensor report line. */
  stderr: string;
  /** Tensors the command left allocated; undefined if it never got to report. */
  tensorsLeft: number | undefined;
}

export function runCli(args: readonly string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<CliResult> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    TESSERA_BACKEND: activeBackend() ?? 'wasm',
    TESSERA_REPORT_TENSORS: '1',
    TESSERA_DEBUG: undefined,
    ...options.env,
  };
  for (const k of Object.keys(env)) if (env[k] === undefined) delete env[k];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: env as NodeJS.ProcessEnv, cwd: options.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const report = /^tessera: tensors left (\d+)\n/m;
      const m = report.exec(stderr);
      resolve({ code, stdout, stderr: stderr.replace(report, ''), tensorsLeft: m === null ? undefined : Number(m[1]) });
    });
  });
}

/** A failed command's stderr: exactly one line `tessera: ...`, no stack. */
export function oneLineError(stderr: string): string {
  const lines = stderr.split('\n').filter((l) => l !== '');
  if (lines.length !== 1 || !lines[0]!.startsWith('tessera: ')) throw new Error(`expected one 'tessera: ' line on stderr, got:\n${stderr}`);
  return lines[0]!;
}
