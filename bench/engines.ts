// Cost of the engine-facing steps at real model shapes: writing each placement format, and
// `eplb eval`'s figures (every engine's balance, lower bound, node loads). Ratios are against
// baselines measured in the same process: `JSON.stringify` of the nested phy2log for the writers,
// one full-model plan for eval.
import { evaluateForEngines } from "../src/cli/eval.js";
import { lognormalLoads } from "../src/core/blocks/random.js";
import { toLoadMatrix } from "../src/core/model/matrix.js";
import { rebalanceExperts } from "../src/core/rebalance.js";
import { formatPlacement, OUTPUT_FORMATS, sglangPlacementTorch } from "../src/io/writers.js";
import { SHAPES } from "./shapes.js";
import { medianMs } from "./timing.js";

/**
 * Times every `--output-format` writer and the eval figures on the standard shapes.
 *
 * @example
 * ```ts
 * console.log(await benchEngines({ quick: true }));
 * // | shape | format | ms | x JSON.stringify(phy2log) | bytes | ...
 * ```
 */
export async function benchEngines(options: { quick: boolean }): Promise<string> {
  const shapes = options.quick ? SHAPES.slice(0, 1) : SHAPES;
  const runs = options.quick ? 9 : 25;
  const writerRows: string[] = [];
  const evalRows: string[] = [];
  for (const shape of shapes) {
    const loads = toLoadMatrix(lognormalLoads(shape.layers, shape.experts, 1, 42));
    const plan = rebalanceExperts(loads, shape.replicas, shape.groups, shape.nodes, shape.gpus, {
      policy: "deepseek",
    });
    // vllm-ascend cannot serve an expert twice on a GPU, which the deepseek plan may have.
    const distinct = rebalanceExperts(
      loads,
      shape.replicas,
      shape.groups,
      shape.nodes,
      shape.gpus,
      { distinctPerGpu: true },
    );
    const baseline = medianMs(() => JSON.stringify(plan.phy2log), runs);
    for (const format of OUTPUT_FORMATS) {
      const placement = format === "vllm-ascend" ? distinct.placement : plan.placement;
      const write = () =>
        formatPlacement(placement, format, { numGpus: shape.gpus, firstLayer: 3 });
      const ms = medianMs(write, runs);
      writerRows.push(
        `| ${shape.name} | ${format} | ${ms.toFixed(3)} | ${(ms / baseline).toFixed(1)} | ${write().length} |`,
      );
    }
    const pt = () => sglangPlacementTorch(plan.placement);
    const ptMs = medianMs(pt, runs);
    writerRows.push(
      `| ${shape.name} | sglang .pt | ${ptMs.toFixed(3)} | ${(ptMs / baseline).toFixed(1)} | ${pt().length} |`,
    );
    const planMs = medianMs(
      () =>
        rebalanceExperts(loads, shape.replicas, shape.groups, shape.nodes, shape.gpus, {
          policy: "deepseek",
        }),
      runs,
    );
    const evalMs = medianMs(
      () => evaluateForEngines(loads, plan.placement, shape.gpus, shape.nodes),
      runs,
    );
    evalRows.push(
      `| ${shape.name} | ${evalMs.toFixed(2)} | ${planMs.toFixed(2)} | ${(evalMs / planMs).toFixed(2)} |`,
    );
  }
  return [
    "## Engine files and eval",
    "",
    `Placement writers (median of ${runs}; baseline: JSON.stringify of the nested phy2log, same process)`,
    "",
    "| shape | format | ms | x baseline | bytes |",
    "| --- | --- | ---: | ---: | ---: |",
    ...writerRows,
    "",
    "eval figures (all engines' balance, lower bound, duplicates, node loads, no-EPLB baseline)",
    "against one full-model deepseek plan of the same shape",
    "",
    "| shape | eval ms | plan ms | eval / plan |",
    "| --- | ---: | ---: | ---: |",
    ...evalRows,
  ].join("\n");
}
