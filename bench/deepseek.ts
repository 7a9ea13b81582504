import { evaluatePlacement, lognormalLoads, makeTopology, planDeepseek } from "../src/index.js";
import { plainRebalance } from "../test/helpers/plain-reference.js";
import { referenceFigures, SHAPES } from "./shapes.js";
import { medianMs } from "./timing.js";

/**
 * The foundation benchmark: the deepseek policy on every standard shape with seeded lognormal
 * (sigma 1.0) loads. Median time per full-model rebalance, its ratio to the reference's published
 * time and to a plain port (linear scans, comparator sorts) timed in this same process, and the
 * balance figures next to the reference's.
 */
export async function benchDeepseek(options: { quick: boolean }): Promise<string> {
  const figures = referenceFigures();
  const rows: string[] = [
    "| shape | median ms | vs plain port (same process) | vs reference time | target | balancedness mean (worst) | reference | max/LB mean (worst) | reference | dup GPUs | reference |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const targets: Record<string, number> = { "dsv3-prefill": 1.5, "kimi-k2": 4 };
  for (const s of SHAPES) {
    const loads = lognormalLoads(s.layers, s.experts, 1.0, 20261129);
    const topology = makeTopology(s.experts, s.replicas, s.groups, s.nodes, s.gpus);
    const fast = medianMs(() => planDeepseek(loads, topology), options.quick ? 20 : 200);
    const rowsNested = Array.from({ length: s.layers }, (_, l) =>
      loads.data.subarray(l * s.experts, (l + 1) * s.experts),
    );
    const plain = medianMs(
      () => plainRebalance(rowsNested, s.replicas, s.groups, s.nodes, s.gpus),
      options.quick ? 3 : 15,
    );
    const m = evaluatePlacement(loads, planDeepseek(loads, topology), {
      numGpus: s.gpus,
      numNodes: s.nodes,
    });
    const ref = figures.get(s.name);
    const [lo, hi] = ref ? ref.timeMs.map((t) => Math.round(t / fast)) : [0, 0];
    const refTime = !ref ? "n/a" : lo === hi ? `${lo}x faster` : `${lo}x to ${hi}x faster`;
    const target = targets[s.name];
    rows.push(
      `| ${s.name} | ${fast.toFixed(3)} | ${(plain / fast).toFixed(1)}x faster | ${refTime} | ${target ? `<= ${target} ms ${fast <= target ? "met" : "MISSED"}` : ""} | ${m.balancedness.toFixed(3)} (${m.worstBalancedness.toFixed(3)}) | ${ref ? ref.balancedness.toFixed(3) : "n/a"} | ${m.maxOverLowerBound.toFixed(3)} (${m.worstMaxOverLowerBound.toFixed(3)}) | ${ref ? ref.maxOverLowerBound.toFixed(3) : "n/a"} | ${m.duplicateGpus} | ${ref ? ref.duplicateGpus : "n/a"} |`,
    );
  }
  return `## deepseek policy (exact reference port), lognormal sigma 1.0, seed 20261129\n\n${rows.join("\n")}\n\nReference figures: ../shared/bench/reference.md (PyTorch on a 2-core machine of this kind). Balance figures differ from the reference's only through the random loads.\n`;
}
