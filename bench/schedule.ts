// Scheduling a rebalance's transfers in rounds (König-optimal edge colouring): its time on the
// standard shapes beside planTransfers' own (both measured in this process), the rounds against
// their lower bound, and the rounds an inter-node copy holds up against theirs.

import { lognormalLoads, Random } from "../src/core/blocks/random.js";
import { makeCostModel } from "../src/core/cost/model.js";
import { expertBytesOf, hardwarePreset, modelPreset } from "../src/core/cost/presets.js";
import { scheduleTransfers } from "../src/core/cost/schedule.js";
import { planTransfers, type TransferPlan } from "../src/core/evaluation/transfers.js";
import type { LoadMatrix } from "../src/core/model/matrix.js";
import { makeTopology, type Topology } from "../src/core/model/topology.js";
import { getPolicy } from "../src/core/policies/index.js";
import { rebalanceExperts } from "../src/core/rebalance.js";
import { SHAPES } from "./shapes.js";
import { medianMs } from "./timing.js";

const SEED = 20261205;
const DRIFT_SIGMA = 0.05;
/** The figure the issue asks for: a dsv3-prefill rebalance scheduled in at most this. */
const TARGET_MS = 5;

/** Largest per-GPU send or receive count among transfers of the given kinds. */
function maxDegree(plan: TransferPlan, t: Topology, interOnly: boolean): number {
  const send = new Int32Array(t.numGpus);
  const receive = new Int32Array(t.numGpus);
  let best = 0;
  for (let i = 0; i < plan.count; i++) {
    if (plan.kind[i] === 0 || (interOnly && plan.kind[i] !== 2)) continue;
    const s = Math.floor(plan.source[i] / t.slotsPerGpu);
    const d = Math.floor(plan.destination[i] / t.slotsPerGpu);
    best = Math.max(best, ++send[s], ++receive[d]);
  }
  return best;
}

/**
 * The table: per shape, the rebalance from a placement after 5% drift (`balanced` from the
 * previous placement, what `eplb plan --previous` does) and a re-plan from scratch
 * (`deepseek`, what engines do, far more transfers).
 */
export async function benchSchedule(options: { quick: boolean }): Promise<string> {
  const names = options.quick ? ["dsv3-prefill"] : ["dsv3-prefill", "kimi-k2", "dsv3-decode144"];
  const model = modelPreset("deepseek-v3");
  const h800 = hardwarePreset("h800");
  const cost = makeCostModel({
    expertBytes: expertBytesOf(model),
    intraGbps: h800.intraGbps,
    interGbps: h800.interGbps,
    tokenUs: 0,
  });
  const runs = options.quick ? 5 : 31;
  const rows: string[] = [];
  let verdict = "";
  for (const shape of SHAPES.filter((s) => names.includes(s.name))) {
    const { layers, experts, replicas, groups, nodes, gpus } = shape;
    const t = makeTopology(experts, replicas, groups, nodes, gpus);
    const before = lognormalLoads(layers, experts, 1, SEED);
    const rng = new Random(SEED + 1);
    const data = new Float64Array(before.data);
    for (let i = 0; i < data.length; i++) data[i] *= rng.lognormal(DRIFT_SIGMA);
    const after: LoadMatrix = { layers, experts, data };
    const previous = getPolicy("balanced").plan(before, t, {});
    const cases = [
      [
        "rebalance from previous",
        rebalanceExperts(after, replicas, groups, nodes, gpus, { previous }).placement,
      ],
      ["deepseek re-plan", getPolicy("deepseek").plan(after, t, {})],
    ] as const;
    for (const [label, next] of cases) {
      const plan = planTransfers(previous, next, t);
      const schedule = scheduleTransfers(plan, t, cost);
      const interRounds = new Set<number>();
      for (let i = 0; i < plan.count; i++)
        if (plan.kind[i] === 2) interRounds.add(schedule.roundOf[i]);
      const scheduleMs = medianMs(() => scheduleTransfers(plan, t, cost), runs);
      const planMs = medianMs(() => planTransfers(previous, next, t), runs);
      rows.push(
        `| ${shape.name} | ${label} | ${plan.count} | ${schedule.rounds} (${maxDegree(plan, t, false)}) | ${interRounds.size} (${maxDegree(plan, t, true)}) | ${schedule.totalMs.toFixed(1)} | ${scheduleMs.toFixed(3)} | ${planMs.toFixed(3)} | ${(scheduleMs / planMs).toFixed(2)} |`,
      );
      if (shape.name === "dsv3-prefill" && label === "rebalance from previous") {
        verdict = `dsv3-prefill rebalance scheduled in ${scheduleMs.toFixed(3)} ms (target <= ${TARGET_MS} ms: ${scheduleMs <= TARGET_MS ? "met" : "MISSED"}), ${(scheduleMs / planMs).toFixed(2)}x planTransfers' own time`;
      }
    }
  }
  return [
    `Transfer schedule (scheduleTransfers), 5% lognormal drift, DeepSeek-V3 experts (${expertBytesOf(model)} bytes) on H800 links (${h800.intraGbps}/${h800.interGbps} Gb/s), median of ${runs} runs:`,
    "",
    "| shape | next placement | transfers | rounds (lower bound) | rounds with an inter-node copy (lower bound) | estimated ms | schedule ms | planTransfers ms | schedule / planTransfers |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    verdict,
  ].join("\n");
}
