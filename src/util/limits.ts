/**
 * The most elements one tensor may have: tfjs indexes tensors with 32-bit signed integers, so a
 * model is built, saved and loaded only with tensors below this bound (one bound for all three,
 * so that a model Tessera builds can always read its own checkpoint back).
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;
