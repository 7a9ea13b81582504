// `npm run bench -- --only locality`: locality-aware placement on the kimi-k2 and qwen3-235b
// shapes with synthetic clustered routing. The plan is made from one token set and measured on
// held-out tokens of the same distribution; times are of the public call, against the balanced
// plan's in the same run.

import { evaluatePlacement } from "../src/core/evaluation/metrics.js";
import type { LoadMatrix } from "../src/core/model/matrix.js";
import type { Placement } from "../src/core/model/placement.js";
import { rebalanceExperts } from "../src/core/rebalance.js";
import { dispatchStats } from "../src/core/routing/dispatch.js";
import { makeRouting, type Routing } from "../src/core/routing/routing.js";
import { synthRouting } from "../src/core/traces/synth-routing.js";
import { SHAPES } from "./shapes.js";

/** Tokens counted into loads, `[layers][experts]`. */
export function routingLoads(r: Routing): LoadMatrix {
  const data = new Float64Array(r.layers * r.experts);
  const { tokens, layers, k, experts, topk } = r;
  for (let t = 0; t < tokens; t++) {
    for (let l = 0; l < layers; l++) {
      for (let j = 0; j < k; j++) {
        const e = topk[(t * layers + l) * k + j];
        if (e >= 0) data[l * experts + e]++;
      }
    }
  }
  return { layers, experts, data };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

export async function benchLocality(options: { quick: boolean }): Promise<string> {
  const rows: string[] = [
    "| shape | top-k | planning tokens | remote nodes/token balanced | locality | reduction | balancedness balanced | locality | planning-set balancedness balanced / locality | balanced ms | locality ms | ratio | locality CPU ms |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const runs = options.quick ? 1 : 3;
  for (const name of ["kimi-k2", "qwen3-235b"]) {
    const shape = SHAPES.find((s) => s.name === name);
    if (!shape) continue;
    const k = 8;
    const tokens = options.quick ? 20000 : 100000;
    const held = 10000;
    // One stream: the first step plans, the second (same popularity: drift 0) is held out.
    const src = synthRouting({
      tokens: tokens + held,
      layers: shape.layers,
      experts: shape.experts,
      k,
      seed: 20261205,
      drift: 0,
    });
    const all = src.readStep(0);
    const per = shape.layers * k;
    // Validated here, as a routing reader does, so the timed call does not check it again.
    const plan = makeRouting({ ...all, tokens, topk: all.topk.subarray(0, tokens * per) });
    const test: Routing = { ...all, tokens: held, topk: all.topk.subarray(tokens * per) };
    const loads = routingLoads(plan);
    const heldLoads = routingLoads(test);
    const args = [shape.replicas, shape.groups, shape.nodes, shape.gpus] as const;
    const tb: number[] = [];
    const tl: number[] = [];
    const cl: number[] = [];
    let base: Placement | undefined;
    let loc: Placement | undefined;
    for (let i = 0; i < runs; i++) {
      let s = performance.now();
      base = rebalanceExperts(loads, ...args).placement;
      tb.push(performance.now() - s);
      s = performance.now();
      const cpu = process.cpuUsage();
      loc = rebalanceExperts(loads, ...args, { routing: plan }).placement;
      tl.push(performance.now() - s);
      cl.push(process.cpuUsage(cpu).user / 1000);
    }
    if (!base || !loc) continue;
    const shapeOf = { numGpus: shape.gpus, numNodes: shape.nodes };
    const rb = dispatchStats(test, base, shapeOf).remoteNodesPerToken;
    const rl = dispatchStats(test, loc, shapeOf).remoteNodesPerToken;
    const bb = evaluatePlacement(heldLoads, base, shapeOf).balancedness;
    const bl = evaluatePlacement(heldLoads, loc, shapeOf).balancedness;
    const pb = evaluatePlacement(loads, base, shapeOf).balancedness;
    const pl = evaluatePlacement(loads, loc, shapeOf).balancedness;
    const mb = median(tb);
    const ml = median(tl);
    rows.push(
      `| ${name} | ${k} | ${tokens} | ${rb.toFixed(3)} | ${rl.toFixed(3)} | ${(100 * (1 - rl / rb)).toFixed(1)}% | ${bb.toFixed(4)} | ${bl.toFixed(4)} | ${pb.toFixed(4)} / ${pl.toFixed(4)} | ${mb.toFixed(1)} | ${ml.toFixed(1)} | ${(ml / mb).toFixed(1)}x | ${median(cl).toFixed(0)} |`,
    );
  }
  return [
    "## Locality-aware placement (synthetic clustered routing: 8 clusters, affinity 0.8, lognormal 1.0; 10,000 held-out tokens; times: median of 3 public calls, wall and user CPU)",
    "",
    ...rows,
  ].join("\n");
}
