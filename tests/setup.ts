import 'reflect-metadata';
import { initBackend } from '../src/kernels/backend.js';

// Tests run on wasm unless TESSERA_BACKEND names another (the native backend's parity run).
await initBackend({ backend: (process.env.TESSERA_BACKEND as 'wasm' | undefined) ?? 'wasm' });
