/** Token ids for the benchmarks: a fixed linear congruential stream, the same on every run. */
export function pseudoRandomIds(count: number, vocab: number, seed = 1): number[] {
  let s = seed;
  return Array.from({ length: count }, () => ((s = (s * 1103515245 + 12345) % 2147483648), s % vocab));
}
