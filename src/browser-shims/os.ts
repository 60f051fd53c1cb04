/**
 * `node:os` for browser bundles (mapped by the bundler, see docs/browser.md): the one function
 * the model-size check reads. A page cannot see the machine's memory; `navigator.deviceMemory`
 * (GiB, Chromium only, capped at 8) is the closest bound, else 4 GiB.
 */
export function totalmem(): number {
  const gib = (globalThis.navigator as { deviceMemory?: number } | undefined)?.deviceMemory;
  return (typeof gib === 'number' && gib > 0 ? gib : 4) * 2 ** 30;
}
