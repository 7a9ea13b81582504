/**
 * Median wall time of `fn` in ms over `runs` timed runs after a warm-up, so JIT tiers and GC
 * noise do not decide the figure.
 */
export function medianMs(fn: () => unknown, runs: number): number {
  const warmup = Math.max(3, Math.ceil(runs / 5));
  for (let i = 0; i < warmup; i++) fn();
  const times = new Float64Array(runs);
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    fn();
    times[i] = performance.now() - start;
  }
  times.sort();
  return runs % 2 ? times[(runs - 1) / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
}
