import { statSync } from "node:fs";
import { makeTopology } from "../core/model/topology.js";
import { RoutingReplay } from "../core/routing/replay.js";
import type { Routing } from "../core/routing/routing.js";
import type { SimulationResult } from "../core/traces/simulate.js";
import { EplbFormatError } from "../io/errors.js";
import { selectSteps } from "../io/interpret.js";
import { openRoutingTrace, type RoutingTrace, readPassRouting } from "../io/routing.js";
import type { PlainConfig } from "../pipeline/sweep.js";
import type { Flags } from "./args.js";
import { UsageError } from "./command.js";
import { located, unreadableAsUsage } from "./inputs.js";
import { fixed3, percent2, round6 } from "./output.js";

/** Help lines of `eplb simulate --routing`. */
export const SIMULATE_ROUTING_HELP = `  --routing FILE|DIR
                    per-token routing of the same steps: .npy integer expert ids
                    [steps, tokens, layers, k] (-1 = no choice), or the SGLang per_token
                    dumps --trace replays (one step per forward pass): each strategy's
                    realised remote nodes per token (docs/locality.md) beside its balance, in
                    the table and the JSON (locality); --steps slices it as it slices the trace`;

/** A routing opened for a replay, its steps mapped onto the load trace's. */
export interface SimulationRouting {
  readonly file: string;
  readonly layers: number;
  readonly k: number;
  /** What the table says of the tokens, e.g. "50 tokens per step". */
  readonly describe: string;
  /** Whether each token's source node is known (SGLang dumps) or spread (`.npy`). */
  readonly sources: "ranks" | "spread";
  /** The routing of replayed step `step` (after `--steps`). */
  readStep(step: number): Routing;
  /** The tokens of replayed step `step`, without reading it. */
  tokensOf(step: number): number;
  close(): void;
}

/**
 * Opens `--routing` for `eplb simulate`, checked against the load trace: same layers, the same
 * steps (after `--steps`, applied to both), expert ids of the trace's experts; refused with a
 * sweep (one run at a time). A `.npy` `[steps, tokens, layers, k]` is read a step at a time;
 * SGLang `per_token` dumps (a folder or a file) are split into forward passes in id order, the
 * steps `--trace` replays from the same dumps.
 *
 * @param flags parsed flags
 * @param cwd the command's working directory
 * @param trace the load trace's shape (after `--steps`)
 * @returns the opened routing, or null without `--routing`
 * @throws UsageError or EplbFormatError in one line when the routing does not fit
 * @example
 * ```ts
 * const routing = openSimulationRouting({ routing: "steps.npy" }, process.cwd(), { steps: 2, layers: 1, experts: 2 });
 * routing?.describe; // "1 tokens per step"
 * routing?.close();
 * ```
 */
export function openSimulationRouting(
  flags: Flags,
  cwd: string,
  trace: { readonly steps: number; readonly layers: number; readonly experts: number },
): SimulationRouting | null {
  const file = flags.routing;
  if (file === undefined) return null;
  if (typeof file !== "string" || file === "") throw new UsageError("--routing needs a file");
  if (flags.sweep !== undefined) {
    throw new UsageError("--routing judges one run: it cannot be combined with --sweep");
  }
  const path = located(file, cwd);
  const steps = typeof flags.steps === "string" ? flags.steps : undefined;
  const fit = (layers: number, count: number) => {
    if (layers !== trace.layers) {
      throw new EplbFormatError(
        file,
        `routing has ${layers} layers, the trace ${trace.layers}: they must describe the same MoE layers`,
      );
    }
    const slice = selectSteps(steps, count);
    if (slice.count !== trace.steps) {
      throw new EplbFormatError(
        file,
        `routing has ${count} steps${steps ? ` (${slice.count} after --steps ${steps})` : ""}, the replayed trace ${trace.steps}: give the routing of the trace's steps`,
      );
    }
    return (step: number) => slice.start + step * slice.step;
  };
  const opened = unreadableAsUsage(file, () => openNpyOrNull(path, trace.experts));
  if (!opened) {
    const { passes, repeated } = unreadableAsUsage(file, () =>
      readPassRouting([path], trace.experts),
    );
    const stepOf = fit(passes[0]?.layers ?? trace.layers, passes.length);
    const tokens = passes.reduce((n, p) => n + p.tokens, 0);
    return {
      file,
      layers: trace.layers,
      k: passes[0]?.k ?? 0,
      describe: `${tokens} tokens in ${passes.length} forward passes`,
      // Ranks that recorded the same tokens leave the tokens without a source.
      sources: repeated ? "spread" : "ranks",
      readStep: (step) => passes[stepOf(step)],
      tokensOf: (step) => passes[stepOf(step)].tokens,
      close: () => {},
    };
  }
  try {
    const stepOf = fit(opened.layers, opened.steps);
    return {
      file,
      layers: opened.layers,
      k: opened.k,
      describe: `${opened.tokens} tokens per step`,
      sources: "spread",
      readStep: (step) => opened.readStep(stepOf(step)),
      tokensOf: () => opened.tokens,
      close: () => opened.close(),
    };
  } catch (error) {
    opened.close();
    throw error;
  }
}

/** The `.npy` routing trace at `path`, or null when the file is not a `.npy` (a dump, a folder). */
function openNpyOrNull(path: string, experts: number): RoutingTrace | null {
  if (statSync(path, { throwIfNoEntry: false })?.isDirectory()) return null;
  try {
    return openRoutingTrace(path, experts);
  } catch (error) {
    if (error instanceof EplbFormatError && /is not a \.npy file/.test(error.problem)) return null;
    throw error;
  }
}

/**
 * The name of eplb's row in a replay's tables: its policy, whether it rebalances from the
 * previous placement and whether it plans with the routing.
 *
 * @param r the replay's result
 * @returns the label
 * @example
 * ```ts
 * const trace = { steps: 2, layers: 1, experts: 2, data: new Float64Array([3, 1, 1, 3]) };
 * const base = { numReplicas: 2, numGroups: 1, numNodes: 1, numGpus: 2, interval: 1, window: 1 };
 * eplbLabel(simulate(trace, base)); // "eplb (balanced, from previous)"
 * ```
 */
export function eplbLabel(r: SimulationResult): string {
  return `eplb (${r.policy}${r.fromPrevious ? ", from previous" : ""}${r.localityPlanning ? ", locality" : ""})`;
}

/**
 * A judge for one replay: its `onJudged` goes into the simulator's configuration, then
 * `table` and `json` give the figures.
 *
 * @param routing the opened routing
 * @param config the replay's configuration (its cluster shape)
 * @param experts the trace's experts per layer
 * @param judgedSteps the steps the simulator judges (`steps - interval`)
 * @returns the hook and the formatters
 * @example
 * ```ts
 * const trace = { steps: 2, layers: 1, experts: 2, data: new Float64Array([3, 1, 1, 3]) };
 * const base = { numReplicas: 2, numGroups: 1, numNodes: 2, numGpus: 2, interval: 1, window: 1 };
 * const routing = openSimulationRouting({ routing: "steps.npy" }, process.cwd(), trace);
 * const judge = routingJudge(routing, base, 2, 1);
 * simulate(trace, { ...base, onJudged: judge.onJudged });
 * judge.json().eplb.perStep.length; // 1
 * ```
 */
export function routingJudge(
  routing: SimulationRouting,
  config: PlainConfig,
  experts: number,
  judgedSteps: number,
) {
  const topology = makeTopology(
    experts,
    config.numReplicas,
    config.numGroups,
    config.numNodes,
    config.numGpus,
  );
  const replay = new RoutingReplay(topology, (step) => routing.readStep(step), judgedSteps);
  return {
    onJudged: replay.judge.bind(replay),
    /** Lines appended to the simulation table. */
    table(r: SimulationResult): string {
      const res = replay.results();
      const names: [string, string][] = [
        ["eplb", eplbLabel(r)],
        ["deepseek", "deepseek re-planning (window mean)"],
        ["oracle", `oracle (${r.policy} on the judged steps)`],
        ["none", "no balancing (experts in order)"],
      ];
      const rows = names
        .filter(([k]) => res[k])
        .map(
          ([k, label]) =>
            `  ${label.padEnd(40)} ${fixed3(res[k].remoteNodesPerToken).padStart(8)} ${fixed3(res[k].worstRemoteNodesPerToken).padStart(11)} ${percent2(res[k].crossNodeShare).padStart(10)}`,
        );
      return [
        `routing ${routing.file}: ${routing.describe}, top-${routing.k}; remote nodes per token (docs/locality.md):`,
        `  ${"strategy".padEnd(40)} ${"mean".padStart(8)} ${"worst step".padStart(11)} ${"off node".padStart(10)}`,
        ...rows,
        `off node = share of the tokens' expert choices served on another node than theirs (${
          routing.sources === "ranks"
            ? "a token's node is its rank's"
            : "source node unknown in a .npy routing: spread evenly over the nodes"
        }).`,
        "",
      ].join("\n");
    },
    /** The `locality` object of the JSON. */
    json(): Record<string, unknown> {
      const res = replay.results();
      return {
        routing: {
          file: routing.file,
          description: routing.describe,
          k: routing.k,
          sources: routing.sources,
        },
        ...Object.fromEntries(
          Object.entries(res).map(([k, v]) => [
            k,
            {
              remoteNodesPerToken: round6(v.remoteNodesPerToken),
              worstRemoteNodesPerToken: round6(v.worstRemoteNodesPerToken),
              crossNodeShare: round6(v.crossNodeShare),
              perStep: Array.from(v.perStep, round6),
            },
          ]),
        ),
      };
    },
  };
}
