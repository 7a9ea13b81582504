import { DEFAULT_LOCALITY_TOLERANCE } from "../core/policies/locality.js";
import { DEFAULT_LOCALITY_GAIN } from "../core/policies/locality-moves.js";
import { DEFAULT_WINDOW_TOKENS, windowRouting } from "../core/routing/window.js";
import type { LocalityPlanning } from "../core/traces/simulate.js";
import { type Flags, integerFlag, numberFlag } from "./args.js";
import { UsageError } from "./command.js";
import type { SimulationRouting } from "./simulate-routing.js";

/** The flags of `eplb simulate --locality`. */
export const SIMULATE_LOCALITY_OPTIONS = {
  locality: { type: "boolean" },
  "locality-tolerance": { type: "string" },
  "locality-gain": { type: "string" },
  "locality-tokens": { type: "string" },
} as const;

/** Help lines of `eplb simulate --locality`. */
export const SIMULATE_LOCALITY_HELP = `  --locality        with --routing: eplb's own rebalances plan with the routing of their
                    estimation window (the last --window steps' tokens), trading locality
                    against balance and, from the previous placement, against slots moved
                    (docs/locality.md); the baselines, the oracle too, plan without it
  --locality-tolerance F  relative rise of a layer's max GPU load the locality search may
                    take [default: ${DEFAULT_LOCALITY_TOLERANCE}]
  --locality-gain F from the previous placement: a locality move must cut the layer's remote
                    nodes per token by F per slot it newly changes [default: ${DEFAULT_LOCALITY_GAIN}]
  --locality-tokens N  the most token rows a rebalance plans with: the window's tokens are
                    sampled evenly down to N [default: ${DEFAULT_WINDOW_TOKENS}]`;

const DEPENDENT = ["locality-tolerance", "locality-gain", "locality-tokens"] as const;

/**
 * Refuses `--locality` (and its settings) where it cannot apply, before any file is read:
 * without `--locality`, `--routing`, or with `--sweep`, `--recommend`, or `--locality-gain`
 * with `--fresh`.
 *
 * @param flags parsed flags
 * @throws UsageError in one line naming the flag and the rule
 * @example
 * ```ts
 * checkLocalityFlags({ locality: true }); // throws UsageError: --locality needs --routing ...
 * ```
 */
export function checkLocalityFlags(flags: Flags): void {
  for (const name of DEPENDENT) {
    if (flags[name] !== undefined && flags.locality !== true) {
      throw new UsageError(`--${name} needs --locality`);
    }
  }
  if (flags.locality !== true) return;
  if (flags.sweep !== undefined || flags.recommend === true) {
    const other = flags.sweep !== undefined ? "--sweep" : "--recommend";
    throw new UsageError(
      `--locality plans one run with --routing: it cannot be combined with ${other}`,
    );
  }
  if (flags.routing === undefined) {
    throw new UsageError("--locality needs --routing (the tokens' routing of the trace's steps)");
  }
  if (flags["locality-gain"] !== undefined && flags.fresh === true) {
    throw new UsageError(
      "--locality-gain prices moves from the previous placement: it cannot be combined with --fresh",
    );
  }
}

/** What a replay with `--locality` plans with, for the simulator and the output. */
export interface LocalitySetup {
  /** The simulator's `localityPlanning`. */
  planning: LocalityPlanning;
  /** The most token rows a rebalance plans with. */
  maxTokens: number;
  localityTolerance: number;
  /** Null when every rebalance plans from scratch (`--fresh`). */
  localityGain: number | null;
}

/**
 * The locality planning of `--locality`, or null without it: each rebalance reads the routing of
 * its window's steps from `routing`, a step at a time, keeping at most `--locality-tokens` rows.
 *
 * @param flags parsed flags (checked by {@link checkLocalityFlags})
 * @param routing the opened `--routing`
 * @returns the setup, or null
 * @throws UsageError for a setting out of range
 * @example
 * ```ts
 * const step = (s: number) => makeRouting({ tokens: 1, layers: 1, k: 1, experts: 2,
 *   topk: new Int32Array([s % 2]), rank: null });
 * const routing = { file: "r.npy", layers: 1, k: 1, describe: "1 tokens per step",
 *   sources: "spread" as const, readStep: step, tokensOf: () => 1, close: () => {} };
 * const setup = localitySetup({ locality: true, "locality-tokens": "500" }, routing);
 * setup?.maxTokens; // 500
 * setup?.planning.routing(0, 3).tokens; // 3
 * ```
 */
export function localitySetup(
  flags: Flags,
  routing: SimulationRouting | null,
): LocalitySetup | null {
  if (flags.locality !== true || !routing) return null;
  const maxTokens =
    flags["locality-tokens"] === undefined
      ? DEFAULT_WINDOW_TOKENS
      : integerFlag(flags, "locality-tokens", 1);
  const localityTolerance =
    flags["locality-tolerance"] === undefined
      ? DEFAULT_LOCALITY_TOLERANCE
      : numberFlag(flags, "locality-tolerance", 0, 1, 0);
  const localityGain =
    flags.fresh === true
      ? null
      : flags["locality-gain"] === undefined
        ? DEFAULT_LOCALITY_GAIN
        : numberFlag(flags, "locality-gain", 0, 1000, 0);
  return {
    planning: {
      routing: (from, to) =>
        windowRouting(routing.tokensOf, (s) => routing.readStep(s), from, to, maxTokens),
      localityTolerance,
      ...(localityGain === null ? {} : { localityGain }),
    },
    maxTokens,
    localityTolerance,
    localityGain,
  };
}

/**
 * The line the routing table ends with, and the JSON's `config.locality`, for a setup.
 *
 * @param setup the replay's setup
 * @param window the estimation window in steps
 * @returns the line and the JSON object
 * @example
 * ```ts
 * const setup = { planning: { routing: () => { throw new Error("unused"); } },
 *   maxTokens: 1000, localityTolerance: 0.005, localityGain: null };
 * localityNotes(setup, 10).json; // { window: 10, maxTokens: 1000, localityTolerance: 0.005 }
 * ```
 */
export function localityNotes(
  setup: LocalitySetup,
  window: number,
): { line: string; json: Record<string, unknown> } {
  const gain = setup.localityGain === null ? "" : `, gain ${setup.localityGain} per slot changed`;
  return {
    line: `eplb plans each rebalance with the routing of the last ${window} steps (at most ${setup.maxTokens} tokens, sampled evenly; tolerance ${setup.localityTolerance}${gain}); the baselines, the oracle too, plan without routing.`,
    json: {
      window,
      maxTokens: setup.maxTokens,
      localityTolerance: setup.localityTolerance,
      ...(setup.localityGain === null ? {} : { localityGain: setup.localityGain }),
    },
  };
}
