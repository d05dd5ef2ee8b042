/** Unix time in whole seconds, as GEMVC's `time()`: the `time` of every frame that carries one. */
export function unixSeconds(nowMs: number = Date.now()): number {
  return Math.floor(nowMs / 1000);
}

/** Waits for `promise`, but not past `deadline` (ms since the epoch). */
export async function withDeadline(promise: Promise<unknown>, deadline: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, Math.max(0, Math.min(deadline - Date.now(), 2 ** 31 - 1)));
  });
  await Promise.race([promise, expired]);
  clearTimeout(timer);
}
