import { availableParallelism } from "node:os";
import { type PlainConfig, runSweep, sweepGrid } from "../src/cli/simulate.js";
import {
  DEFAULT_POLICY,
  getPolicy,
  makeTopology,
  type SimulationConfig,
  type SimulationResult,
  type StrategyResult,
  simulate,
  synthesizeTrace,
  synthTrace,
  traceSource,
} from "../src/index.js";
import { SHAPES } from "./shapes.js";

const SHAPE = SHAPES.find((s) => s.name === "dsv3-prefill") ?? SHAPES[0];
const SEED = 1;

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(2)} s`;
}

function time<T>(fn: () => T): [T, number] {
  const start = performance.now();
  const value = fn();
  return [value, performance.now() - start];
}

function strategyRow(name: string, s: StrategyResult, ds: StrategyResult | undefined): string {
  const balance = ds ? (s.meanRealizedBalancedness / ds.meanRealizedBalancedness).toFixed(4) : "";
  const moves =
    ds && ds.movedSlotsPerRebalance > 0
      ? (s.movedSlotsPerRebalance / ds.movedSlotsPerRebalance).toFixed(3)
      : "";
  return `| ${name} | ${s.meanRealizedBalancedness.toFixed(4)} | ${s.worstRealizedBalancedness.toFixed(4)} | ${s.movedSlotsPerRebalance.toFixed(1)} | ${(s.movedSlotsFraction * 100).toFixed(2)}% | ${balance} | ${moves} |`;
}

function comparison(r: SimulationResult): string {
  const ds = r.baselines.deepseek;
  const rows = [
    "| strategy | realised balancedness, mean | worst step | slots moved / rebalance | of all slots | balancedness / deepseek's | moves / deepseek's |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    strategyRow(
      `default: ${r.policy}${r.fromPrevious ? ", from the previous placement" : ""}`,
      r.eplb,
      ds,
    ),
  ];
  if (ds) rows.push(strategyRow("deepseek re-planning every interval", ds, ds));
  if (r.baselines.oracle)
    rows.push(strategyRow(`oracle (${r.policy} on the judged steps)`, r.baselines.oracle, ds));
  if (r.baselines.none) rows.push(strategyRow("no balancing", r.baselines.none, ds));
  let verdict = "";
  if (ds) {
    const balanceOk = r.eplb.meanRealizedBalancedness >= ds.meanRealizedBalancedness;
    const movesOk = r.eplb.movedSlotsPerRebalance <= ds.movedSlotsPerRebalance / 5;
    verdict = `\nTarget (default beats deepseek re-planning: balancedness at least as high, at most a fifth of the moves): balancedness ${balanceOk ? "met" : "MISSED"}, moves ${movesOk ? "met" : "MISSED"}.\n`;
  }
  return `${rows.join("\n")}\n${verdict}`;
}

/**
 * The simulator benchmark: speed of replaying a 10,000-step synthetic trace at the dsv3-prefill
 * shape (target 10 s), the default configuration against deepseek re-planning on drifting
 * traces (target: balancedness at least as high, at most a fifth of the moves), and a sweep
 * in this thread against worker threads.
 */
export async function benchSimulate(options: { quick: boolean }): Promise<string> {
  const steps = options.quick ? 400 : 10_000;
  const interval = options.quick ? 50 : 100;
  const { layers, experts, replicas, groups, nodes, gpus } = SHAPE;
  const topology = makeTopology(experts, replicas, groups, nodes, gpus);
  const base: SimulationConfig = {
    numReplicas: replicas,
    numGroups: groups,
    numNodes: nodes,
    numGpus: gpus,
    interval,
    window: interval,
  };
  const out: string[] = [];
  out.push(
    `## eplb simulate: ${steps.toLocaleString("en-US")} steps x ${layers} layers x ${experts} experts, ${SHAPE.name} (${replicas} slots, ${groups} groups, ${nodes} nodes, ${gpus} GPUs), interval ${interval}, window ${interval}\n`,
  );
  out.push(
    `Trace: SYNTHETIC (eplb synth defaults, seed ${SEED}: lognormal sigma 1.0, drift 0.01/step, 32768 tokens/layer/step, bursts). Default policy: ${DEFAULT_POLICY}.\n`,
  );

  // Speed. The trace is materialised as int32 counts (594 MB at full size, float64 would be
  // 1.2 GB); the baseline is one plain pass over it, reading every step as the simulator does.
  const [trace, genMs] = time(() => synthesizeTrace({ steps, layers, experts, seed: SEED }));
  const n = layers * experts;
  const [, passMs] = time(() => {
    const src = traceSource(trace);
    const buf = new Float64Array(n);
    let s = 0;
    for (let t = 0; t < steps; t++) {
      src.readStep(t, buf, 0);
      s += buf[t % n];
    }
    return s;
  });
  const plan = getPolicy(DEFAULT_POLICY);
  const loads = { layers, experts, data: new Float64Array(n).fill(1) };
  for (let i = 0; i < n; i++) loads.data[i] = trace.data[i] + 1;
  const [, planMs] = time(() => {
    for (let i = 0; i < 5; i++) plan.plan(loads, topology, { policy: DEFAULT_POLICY });
  });
  const [full, fullMs] = time(() => simulate(trace, base));
  const [, aloneMs] = time(() => simulate(trace, { ...base, baselines: false, series: false }));
  const [, streamMs] = time(() =>
    simulate(synthTrace({ steps, layers, experts, seed: SEED }), {
      ...base,
      baselines: false,
      series: false,
    }),
  );
  const rebalances = full.rebalanceSteps.length;
  out.push("### Speed\n");
  out.push(
    "| run | time | per rebalance | vs one plain pass over the trace | target |\n| --- | --- | --- | --- | --- |",
  );
  out.push(`| one plain pass over the trace (baseline) | ${seconds(passMs)} | | 1.0x | |`);
  out.push(
    `| simulate: default configuration + 3 baselines | ${seconds(fullMs)} | ${(fullMs / rebalances).toFixed(1)} ms | ${(fullMs / passMs).toFixed(1)}x | ${options.quick ? "" : `<= 10 s ${fullMs <= 10_000 ? "met" : "MISSED"}`} |`,
  );
  out.push(
    `| simulate: configuration only (no baselines, no series) | ${seconds(aloneMs)} | ${(aloneMs / rebalances).toFixed(1)} ms | ${(aloneMs / passMs).toFixed(1)}x | |`,
  );
  out.push(
    `| simulate streamed from the generator (generation included, nothing materialised) | ${seconds(streamMs)} | | ${(streamMs / passMs).toFixed(1)}x | |`,
  );
  out.push(
    `\nGenerating the materialised trace took ${seconds(genMs)}; one full-model ${DEFAULT_POLICY} plan takes ${(planMs / 5).toFixed(1)} ms. ${rebalances} rebalances, ${full.judgedSteps} judged steps.\n`,
  );

  out.push(
    `### Default configuration vs deepseek re-planning (drift 0.01/step, the trace above)\n`,
  );
  out.push(comparison(full));

  // A faster-drifting trace: stale estimates cost more, re-planning from scratch moves as much.
  const driftSteps = options.quick ? 400 : 3000;
  const drifting = synthesizeTrace({
    steps: driftSteps,
    layers,
    experts,
    seed: SEED + 1,
    drift: 0.03,
  });
  out.push(
    `### Default configuration vs deepseek re-planning (drift 0.03/step, ${driftSteps} steps, seed ${SEED + 1})\n`,
  );
  out.push(comparison(simulate(drifting, base)));

  // Sweep: the same grid in this thread and on worker threads sharing one copy of the trace.
  const sweepSteps = options.quick ? 300 : 2000;
  const sweepTrace = synthesizeTrace({ steps: sweepSteps, layers, experts, seed: SEED + 2 });
  const grid = sweepGrid({ ...base, interval: 50, window: 100 } as PlainConfig, {
    interval: ["50", "100", "200"],
    estimator: ["mean", "ema"],
  });
  const workers = availableParallelism();
  const [rows, oneMs] = await timeAsync(() => runSweep(sweepTrace, grid, 1, () => {}));
  const [, poolMs] = await timeAsync(() => runSweep(sweepTrace, grid, workers, () => {}));
  out.push(
    `### Sweep: interval=50,100,200 x estimator=mean,ema (window 100), ${sweepSteps} steps, seed ${SEED + 2}\n`,
  );
  out.push(
    `| run | time | vs one thread |\n| --- | --- | --- |\n| one thread | ${seconds(oneMs)} | 1.0x |\n| ${workers} worker threads | ${seconds(poolMs)} | ${(oneMs / poolMs).toFixed(2)}x faster |\n`,
  );
  out.push(
    "| interval | estimator | balancedness | slots moved / rebalance | deepseek balancedness | deepseek moves | oracle |\n| --- | --- | --- | --- | --- | --- | --- |",
  );
  for (const r of rows) {
    out.push(
      `| ${r.interval} | ${r.estimator} | ${r.meanRealizedBalancedness.toFixed(4)} | ${r.movedSlotsPerRebalance.toFixed(1)} | ${r.baselines.deepseek?.meanRealizedBalancedness.toFixed(4)} | ${r.baselines.deepseek?.movedSlotsPerRebalance.toFixed(1)} | ${r.baselines.oracle?.meanRealizedBalancedness.toFixed(4)} |`,
    );
  }
  return `${out.join("\n")}\n`;
}

async function timeAsync<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const start = performance.now();
  const value = await fn();
  return [value, performance.now() - start];
}
