/** Unix time in whole seconds, as GEMVC's `time()`: the `time` of every frame that carries one. */
export function unixSeconds(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000);
}
