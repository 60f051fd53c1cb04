import type { Architecture } from './architecture.js';
import { bert } from './bert/model.js';
import { hybrid } from './hybrid/model.js';
import { jamba } from './jamba/model.js';
import { llama } from './llama/model.js';
import { mamba } from './mamba/model.js';
import { architectureRegistry } from './registry.js';

/** The architectures Tessera ships, registered at import. */
export const builtinArchitectures: Architecture<any>[] = [bert, llama, mamba, jamba, hybrid];
for (const a of builtinArchitectures) architectureRegistry().register(a);

export { bert, llama, mamba, jamba, hybrid };
