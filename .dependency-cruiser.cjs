/**
 * The import rules of src/, one per folder (docs/architecture.md explains each). Checked by
 * tests/structure/dependencies.test.ts, so `npm test` fails when a folder breaks its rule.
 * Type-only imports count: a cycle or a wrong-way dependency in types is one in the design.
 */
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'imports-resolve',
      comment: 'Every import in src resolves to a file; an unresolved one would escape the rules below.',
      severity: 'error',
      from: { path: '^src/' },
      to: { couldNotResolve: true },
    },
    {
      name: 'no-circular',
      comment: 'No import cycles anywhere in src: every folder sits above or beside the ones it uses.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'layers-stay-below',
      comment: 'Blocks are the bottom of the design: they never import models, architectures, loaders, generation, hooks or training.',
      severity: 'error',
      from: { path: '^src/layers/' },
      to: { path: '^src/(models|architectures|loaders|generation|hooks|training)/' },
    },
    {
      name: 'layers-name-no-backend',
      comment: 'Blocks call ops; they never import a kernel, the kernel contract or backend selection (all in src/kernels).',
      severity: 'error',
      from: { path: '^src/layers/' },
      to: { path: '^src/kernels/' },
    },
    {
      name: 'ops-not-layers',
      comment: 'Ops take tensors and plain weight records, never a Layer: they never import blocks or anything above them.',
      severity: 'error',
      from: { path: '^src/ops/' },
      to: { path: '^src/(layers|models|architectures|loaders|generation|hooks|training)/' },
    },
    {
      name: 'kernels-know-nothing-above',
      comment: 'Kernels import tfjs and the kernel contract only: never ops, blocks, models or architectures.',
      severity: 'error',
      from: { path: '^src/kernels/' },
      to: { path: '^src/(ops|layers|models|architectures|loaders|generation|hooks|training)/' },
    },
    {
      name: 'util-imports-nothing',
      comment: 'Helpers every folder may use (option checks, name suggestions): they import nothing else from src.',
      severity: 'error',
      from: { path: '^src/util/' },
      to: { path: '^src/(?!util/)' },
    },
    {
      name: 'architectures-not-loaders',
      comment: 'An architecture is configuration plus wiring: it never imports loaders (files), generation, hooks or training.',
      severity: 'error',
      from: { path: '^src/architectures/' },
      to: { path: '^src/(loaders|generation|hooks|training)/' },
    },
    {
      name: 'models-know-no-services',
      comment: 'A model never opens a file and never knows about hooks or generation: those import the models (see src/model-methods.ts).',
      severity: 'error',
      from: { path: '^src/models/' },
      to: { path: '^src/(generation|hooks|loaders|training)/' },
    },
    {
      name: 'generation-not-beside',
      comment: 'Generation runs models; it never imports hooks, loaders or training.',
      severity: 'error',
      from: { path: '^src/generation/' },
      to: { path: '^src/(hooks|loaders|training)/' },
    },
    {
      name: 'hooks-not-beside',
      comment: 'Hooks work on module paths beside the tree; they never import generation, loaders or training.',
      severity: 'error',
      from: { path: '^src/hooks/' },
      to: { path: '^src/(generation|loaders|training)/' },
    },
    {
      name: 'loaders-not-services',
      comment: 'Loaders turn files into weights; they never import generation, hooks or training.',
      severity: 'error',
      from: { path: '^src/loaders/' },
      to: { path: '^src/(generation|hooks|training)/' },
    },
    {
      name: 'pipelines-for-users',
      comment: 'Pipelines put models, tokenizers and generation together for users; only the package entry and the CLI import them.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(pipelines/|cli/|index\\.ts$)' },
      to: { path: '^src/pipelines/' },
    },
    {
      name: 'cli-on-top',
      comment: 'The command line is the outermost layer: nothing in src imports it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/cli/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'training-on-top',
      comment: 'Training (distillation) uses the rest; nothing in src but the package entry imports it.',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(training/|index\\.ts$)' },
      to: { path: '^src/training/' },
    },
  ],
  options: {
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
  },
};
