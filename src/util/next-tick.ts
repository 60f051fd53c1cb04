/**
 * Let the event loop run once (I/O, timers, rendering) before going on: `setImmediate` in Node,
 * a zero-delay timer where there is none (browsers).
 */
export function yieldToEventLoop(): Promise<void> {
  const immediate = (globalThis as { setImmediate?: (fn: () => void) => unknown }).setImmediate;
  return new Promise((resolve) => (immediate !== undefined ? immediate(resolve) : setTimeout(resolve, 0)));
}
