// tfjs-core registers chained tensor methods (x.add(y), x.reshape(...)) at runtime, but its
// index.d.ts does not pull in their type declarations; this brings them into the project.
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops';
