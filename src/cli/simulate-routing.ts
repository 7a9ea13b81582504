import { makeTopology } from "../core/model/topology.js";
import { RoutingReplay } from "../core/routing/replay.js";
import type { SimulationResult } from "../core/traces/simulate.js";
import { EplbFormatError } from "../io/errors.js";
import { selectSteps } from "../io/interpret.js";
import { openRoutingTrace, type RoutingTrace } from "../io/routing.js";
import type { PlainConfig } from "../pipeline/sweep.js";
import type { Flags } from "./args.js";
import { UsageError } from "./command.js";
import { located, unreadableAsUsage } from "./inputs.js";
import { fixed3, percent2, round6 } from "./output.js";

/** Help lines of `eplb simulate --routing`. */
export const SIMULATE_ROUTING_HELP = `  --routing FILE    per-token routing of the same steps, .npy integer expert ids
                    [steps, tokens, layers, k] (-1 = no choice): each strategy's realised
                    remote nodes per token (docs/locality.md) beside its balance, in the table
                    and the JSON (locality); --steps slices it as it slices the trace`;

/** A routing trace opened for a replay, its steps mapped onto the load trace's. */
export interface SimulationRouting {
  readonly file: string;
  readonly trace: RoutingTrace;
  /** The routing file's step of each replayed step. */
  readonly stepOf: (step: number) => number;
  close(): void;
}

/**
 * Opens `--routing` for `eplb simulate`, checked against the load trace: same layers, the same
 * steps (after `--steps`, applied to both), expert ids of the trace's experts; refused with a
 * sweep (one run at a time).
 *
 * @param flags parsed flags
 * @param cwd the command's working directory
 * @param trace the load trace's shape (after `--steps`)
 * @returns the opened routing, or null without `--routing`
 * @throws UsageError or EplbFormatError in one line when the routing does not fit
 * @example
 * ```ts
 * const routing = openSimulationRouting({ routing: "steps.npy" }, process.cwd(), { steps: 2, layers: 1, experts: 2 });
 * routing?.trace.steps; // 2
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
  const routing = unreadableAsUsage(file, () =>
    openRoutingTrace(located(file, cwd), trace.experts),
  );
  try {
    if (routing.layers !== trace.layers) {
      throw new EplbFormatError(
        file,
        `routing has ${routing.layers} layers, the trace ${trace.layers}: they must describe the same MoE layers`,
      );
    }
    const steps = typeof flags.steps === "string" ? flags.steps : undefined;
    const slice = selectSteps(steps, routing.steps);
    if (slice.count !== trace.steps) {
      throw new EplbFormatError(
        file,
        `routing has ${routing.steps} steps${steps ? ` (${slice.count} after --steps ${steps})` : ""}, the replayed trace ${trace.steps}: give the routing of the trace's steps`,
      );
    }
    return {
      file,
      trace: routing,
      stepOf: (step) => slice.start + step * slice.step,
      close: () => routing.close(),
    };
  } catch (error) {
    routing.close();
    throw error;
  }
}

/**
 * A judge for one replay: its `onJudged` goes into the simulator's configuration, then
 * `table` and `json` give the figures.
 *
 * @param routing the opened routing
 * @param config the replay's configuration (its cluster shape)
 * @param judgedSteps the steps the simulator judges (`steps - interval`)
 * @returns the hook and the formatters
 * @example
 * ```ts
 * const trace = { steps: 2, layers: 1, experts: 2, data: new Float64Array([3, 1, 1, 3]) };
 * const base = { numReplicas: 2, numGroups: 1, numNodes: 2, numGpus: 2, interval: 1, window: 1 };
 * const routing = openSimulationRouting({ routing: "steps.npy" }, process.cwd(), trace);
 * const judge = routingJudge(routing, base, 1);
 * simulate(trace, { ...base, onJudged: judge.onJudged });
 * judge.json().eplb.perStep.length; // 1
 * ```
 */
export function routingJudge(routing: SimulationRouting, config: PlainConfig, judgedSteps: number) {
  const t = routing.trace;
  const topology = makeTopology(
    t.experts,
    config.numReplicas,
    config.numGroups,
    config.numNodes,
    config.numGpus,
  );
  const replay = new RoutingReplay(
    topology,
    (step) => t.readStep(routing.stepOf(step)),
    judgedSteps,
  );
  return {
    onJudged: replay.judge.bind(replay),
    /** Lines appended to the simulation table. */
    table(r: SimulationResult): string {
      const res = replay.results();
      const names: [string, string][] = [
        ["eplb", `eplb (${r.policy}${r.fromPrevious ? ", from previous" : ""})`],
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
        `routing ${routing.file}: ${t.tokens} tokens per step, top-${t.k}; remote nodes per token (docs/locality.md):`,
        `  ${"strategy".padEnd(40)} ${"mean".padStart(8)} ${"worst step".padStart(11)} ${"off node".padStart(10)}`,
        ...rows,
        "off node = share of the tokens' expert choices served on another node than theirs (source node",
        "unknown in a .npy routing: spread evenly over the nodes).",
        "",
      ].join("\n");
    },
    /** The `locality` object of the JSON. */
    json(): Record<string, unknown> {
      const res = replay.results();
      return {
        routing: { file: routing.file, tokens: t.tokens, k: t.k, sources: "spread" },
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
