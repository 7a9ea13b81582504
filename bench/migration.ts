// Rebalancing from the current placement on a seeded drift sequence: slots changed per
// rebalance and balance against a fresh plan, for the default settings and a range of move
// budgets, beside the churn of re-planning from scratch (all measured in this process).

import { RelabelWorkspace, relabelLayer } from "../src/core/blocks/assignment.js";
import { lognormalLoads, Random } from "../src/core/blocks/random.js";
import {
  DEFAULT_MIN_GAIN,
  DEFAULT_MOVE_BUDGET,
  DEFAULT_SLOT_GAIN,
  DEFAULT_TOLERANCE,
  type MigrationOptions,
  migratePlacement,
  smoothMaxGpuLoad,
} from "../src/core/migration/index.js";
import type { LoadMatrix } from "../src/core/model/matrix.js";
import type { Placement } from "../src/core/model/placement.js";
import { makeTopology, type Topology } from "../src/core/model/topology.js";
import { DEFAULT_POLICY, getPolicy } from "../src/core/policies/index.js";
import { SHAPES, type Shape } from "./shapes.js";
import { medianMs } from "./timing.js";

const DRIFT_SIGMA = 0.05;
const LOAD_SIGMA = 1.0;
const SEED = 20261129;

/** One drift sequence: the loads of every step and the fresh plans made from them. */
interface Sequence {
  shape: Shape;
  topology: Topology;
  initial: Placement;
  loads: LoadMatrix[];
  fresh: Placement[];
  freshMs: number;
  /** Slots deepseek's own re-plan changes between consecutive steps, as a share. */
  deepseekChurn: number;
}

function slotsChangedShare(a: Placement, b: Placement): number {
  let n = 0;
  for (let i = 0; i < a.phy2log.length; i++) if (a.phy2log[i] !== b.phy2log[i]) n++;
  return n / a.phy2log.length;
}

function sequence(shape: Shape, steps: number): Sequence {
  const { layers, experts, replicas, groups, nodes, gpus } = shape;
  const topology = makeTopology(experts, replicas, groups, nodes, gpus);
  const policy = getPolicy(DEFAULT_POLICY);
  const deepseek = getPolicy("deepseek");
  const rng = new Random(SEED + 1);
  let current: LoadMatrix = lognormalLoads(layers, experts, LOAD_SIGMA, SEED);
  const initial = policy.plan(current, topology, {});
  let lastDeepseek = deepseek.plan(current, topology, {});
  const loads: LoadMatrix[] = [];
  const fresh: Placement[] = [];
  let freshMs = 0;
  let deepseekChurn = 0;
  for (let step = 0; step < steps; step++) {
    const data = new Float64Array(current.data);
    for (let i = 0; i < data.length; i++) data[i] *= rng.lognormal(DRIFT_SIGMA);
    current = { layers, experts, data };
    loads.push(current);
    const start = performance.now();
    fresh.push(policy.plan(current, topology, {}));
    freshMs += performance.now() - start;
    const ds = deepseek.plan(current, topology, {});
    deepseekChurn += slotsChangedShare(lastDeepseek, ds) / steps;
    lastDeepseek = ds;
  }
  return { shape, topology, initial, loads, fresh, freshMs: freshMs / steps, deepseekChurn };
}

/** Averages over the rebalances of one sequence with one setting. */
interface Run {
  changed: number;
  worstChanged: number;
  afterOverFresh: number;
  /** Mean over layers of the result's smooth max GPU load over the fresh plan's. */
  smoothOverFresh: number;
  worstLayerOverFresh: number;
  beforeOverFresh: number;
  local: number;
  intraNode: number;
  interNode: number;
  freshChurn: number;
  freshRelabelledChurn: number;
  ms: number;
}

function run(seq: Sequence, options: MigrationOptions, relabelled = false): Run {
  const steps = seq.loads.length;
  const out: Run = {
    changed: 0,
    worstChanged: 0,
    afterOverFresh: 0,
    smoothOverFresh: 0,
    worstLayerOverFresh: 0,
    beforeOverFresh: 0,
    local: 0,
    intraNode: 0,
    interNode: 0,
    freshChurn: 0,
    freshRelabelledChurn: 0,
    ms: 0,
  };
  let previous = seq.initial;
  const slots = seq.shape.layers * seq.shape.replicas;
  for (let step = 0; step < steps; step++) {
    const start = performance.now();
    const m = migratePlacement(seq.loads[step], previous, seq.fresh[step], seq.topology, options);
    out.ms += (performance.now() - start) / steps;
    if (relabelled) {
      const P = seq.shape.replicas;
      const row = new Int32Array(P);
      const ws = new RelabelWorkspace(seq.topology);
      for (let l = 0; l < seq.shape.layers; l++) {
        out.freshRelabelledChurn +=
          relabelLayer(
            previous.phy2log,
            l * P,
            seq.fresh[step].phy2log,
            l * P,
            seq.topology,
            row,
            0,
            ws,
          ) /
          slots /
          steps;
      }
    }
    const x = m.metrics;
    const { replicas: P, experts: E, gpus: G, layers: L } = seq.shape;
    const fresh = seq.fresh[step];
    const data = seq.loads[step].data as Float64Array;
    for (let l = 0; l < L; l++) {
      const a = m.placement;
      const after = smoothMaxGpuLoad(data, l * E, a.phy2log, l * P, a.logcnt, l * E, G, P);
      const base = smoothMaxGpuLoad(data, l * E, fresh.phy2log, l * P, fresh.logcnt, l * E, G, P);
      out.smoothOverFresh += base > 0 ? after / base / L / steps : 1 / steps;
    }
    out.changed += x.slotsChangedShare / steps;
    out.worstChanged = Math.max(out.worstChanged, x.slotsChangedShare);
    out.afterOverFresh += x.afterOverFresh / steps;
    out.worstLayerOverFresh = Math.max(out.worstLayerOverFresh, x.worstAfterOverFresh);
    out.beforeOverFresh += x.beforeOverFresh / steps;
    const total = Math.max(1, x.slotsChanged);
    out.local += x.transfers.local / total / steps;
    out.intraNode += x.transfers.intraNode / total / steps;
    out.interNode += x.transfers.interNode / total / steps;
    out.freshChurn += x.freshSlotsChanged / slots / steps;
    previous = m.placement;
  }
  return out;
}

/**
 * Median time of one rebalance from the previous placement (the second step of the sequence,
 * from the first step's result) and of the fresh plan of the same loads, timed in turn in this
 * process: the ratio is the claim (at most 3x), the milliseconds depend on the machine.
 */
function timing(seq: Sequence, runs: number): { migration: number; fresh: number } {
  const policy = getPolicy(DEFAULT_POLICY);
  const { topology, loads, fresh } = seq;
  const previous = migratePlacement(loads[0], seq.initial, fresh[0], topology).placement;
  const migration = medianMs(() => migratePlacement(loads[1], previous, fresh[1], topology), runs);
  const plan = medianMs(() => policy.plan(loads[1], topology, {}), runs);
  return { migration, fresh: plan };
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
const f4 = (x: number) => x.toFixed(4);

/**
 * The migration benchmark: on a seeded drift sequence (lognormal sigma 1.0 loads, 5% lognormal
 * drift per step, starting from a plan of the default policy on the initial loads), rebalancing
 * from the previous placement with the default settings for dsv3-prefill, qwen3-235b and
 * kimi-k2, and the curve of moves against balance over move budgets.
 *
 * @example
 * ```ts
 * console.log(await benchMigration({ quick: true })); // markdown tables
 * ```
 */
export async function benchMigration(options: { quick: boolean }): Promise<string> {
  const quick = options.quick;
  const steps = quick ? 3 : 12;
  const names = quick ? ["dsv3-prefill"] : ["dsv3-prefill", "qwen3-235b", "kimi-k2"];
  const shapes = names.map((n) => SHAPES.find((s) => s.name === n) as Shape);
  const budgets: [string, number][] = quick
    ? [
        ["0", 0],
        ["5%", 0.05],
        ["40% (default)", DEFAULT_MOVE_BUDGET],
      ]
    : [
        ["0", 0],
        ["1%", 0.01],
        ["2.5%", 0.025],
        ["5%", 0.05],
        ["10%", 0.1],
        ["20%", 0.2],
        ["40% (default)", DEFAULT_MOVE_BUDGET],
        ["all slots", Number.POSITIVE_INFINITY],
      ];
  const lines: string[] = [
    `## Rebalancing from the previous placement${quick ? " (quick)" : ""}`,
    "",
    `${steps} rebalances per shape: lognormal sigma ${LOAD_SIGMA} loads (seed ${SEED}), ${100 * DRIFT_SIGMA}% lognormal drift per step, starting from a \`${DEFAULT_POLICY}\` plan of the initial loads; "fresh" is the \`${DEFAULT_POLICY}\` policy re-planned from scratch at every step. Defaults: move budget ${100 * DEFAULT_MOVE_BUDGET}% of a layer's slots, min gain ${DEFAULT_MIN_GAIN}, tolerance ${DEFAULT_TOLERANCE}, slot gain ${DEFAULT_SLOT_GAIN}. Targets: at most 10% of slots changed per rebalance, max GPU load within 1% of fresh. "Smooth max" is the log-sum-exp of the GPU loads the rebalancing minimises (\`smoothMaxGpuLoad\`).`,
    "",
    "| shape | slots changed (mean / worst step) | max GPU load / fresh (mean / worst layer) | smooth max / fresh | before repair / fresh | transfers local / intra-node / inter-node | deepseek re-plan churn | fresh churn (relabelled) | ms per rebalance (x fresh plan) | targets |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const sequences: Sequence[] = [];
  for (const shape of shapes) {
    const seq = sequence(shape, steps);
    sequences.push(seq);
    const r = run(seq, {}, true);
    const ok = r.changed <= 0.1 && r.afterOverFresh <= 1.01;
    lines.push(
      `| ${shape.name} | ${pct(r.changed)} / ${pct(r.worstChanged)} | ${f4(r.afterOverFresh)} / ${f4(r.worstLayerOverFresh)} | ${f4(r.smoothOverFresh)} | ${f4(r.beforeOverFresh)} | ${pct(r.local)} / ${pct(r.intraNode)} / ${pct(r.interNode)} | ${pct(seq.deepseekChurn)} | ${pct(r.freshChurn)} (${pct(r.freshRelabelledChurn)}) | ${r.ms.toFixed(1)} (${(r.ms / seq.freshMs).toFixed(2)}x) | ${ok ? "met" : "MISSED"} |`,
    );
  }
  lines.push(
    "",
    `Time of one rebalance from the previous placement against a fresh \`${DEFAULT_POLICY}\` plan of the same loads (medians of ${quick ? 5 : 15} runs each, in turn, in this process; target: at most 3x):`,
    "",
    "| shape | rebalance from previous (ms) | fresh plan (ms) | ratio |",
    "| --- | --- | --- | --- |",
  );
  for (const seq of sequences) {
    const t = timing(seq, quick ? 5 : 15);
    lines.push(
      `| ${seq.shape.name} | ${t.migration.toFixed(1)} | ${t.fresh.toFixed(1)} | ${(t.migration / t.fresh).toFixed(2)}x |`,
    );
  }
  lines.push(
    "",
    "Moves against balance: mean share of slots changed per rebalance and mean max GPU load / fresh, by move budget per layer (other settings default).",
    "",
    `| budget | ${shapes.map((s) => `${s.name} changed | ${s.name} max / fresh`).join(" | ")} |`,
    `| --- | ${shapes.map(() => "--- | ---").join(" | ")} |`,
  );
  for (const [label, moveBudget] of budgets) {
    const cells = sequences.map((seq) => {
      const r = run(seq, { moveBudget });
      return `${pct(r.changed)} | ${f4(r.afterOverFresh)}`;
    });
    lines.push(`| ${label} | ${cells.join(" | ")} |`);
  }
  if (!quick) {
    lines.push(
      "",
      "Tolerance (where repair stops, relative to the fresh plan's max GPU load) trades the same way:",
      "",
      `| tolerance | ${shapes.map((s) => `${s.name} changed | ${s.name} max / fresh`).join(" | ")} |`,
      `| --- | ${shapes.map(() => "--- | ---").join(" | ")} |`,
    );
    for (const tolerance of [0, 0.004, DEFAULT_TOLERANCE, 0.015]) {
      const cells = sequences.map((seq) => {
        const r = run(seq, { tolerance });
        return `${pct(r.changed)} | ${f4(r.afterOverFresh)}`;
      });
      const label = tolerance === DEFAULT_TOLERANCE ? `${tolerance} (default)` : `${tolerance}`;
      lines.push(`| ${label} | ${cells.join(" | ")} |`);
    }
    lines.push(
      "",
      "Slot gain (the smooth max GPU load a polishing swap must save per changed slot, as a fraction of the mean GPU load; 1 turns polishing off): what `eplb simulate` shows buys balance on future traffic.",
      "",
      `| slot gain | ${shapes.map((s) => `${s.name} changed | ${s.name} max / fresh | ${s.name} smooth / fresh`).join(" | ")} |`,
      `| --- | ${shapes.map(() => "--- | --- | ---").join(" | ")} |`,
    );
    for (const slotGain of [0, 2e-5, DEFAULT_SLOT_GAIN, 1e-4, 3e-4, 1]) {
      const cells = sequences.map((seq) => {
        const r = run(seq, { slotGain });
        return `${pct(r.changed)} | ${f4(r.afterOverFresh)} | ${f4(r.smoothOverFresh)}`;
      });
      const label = slotGain === DEFAULT_SLOT_GAIN ? `${slotGain} (default)` : `${slotGain}`;
      lines.push(`| ${label} | ${cells.join(" | ")} |`);
    }
  }
  return lines.join("\n");
}
