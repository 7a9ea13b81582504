// The read stage of the pipelines that need more than one loads matrix: a simulation's trace
// (rank dumps, a streamed .npy, or any trace file read whole) and the cluster figures an
// `eplb plan` JSON records beside its placement.
import { readFileSync } from "node:fs";
import { extname, resolve } from "node:path";
import type { LoadTrace } from "../core/traces/estimators.js";
import type { TraceSource } from "../core/traces/simulate.js";
import { readAllSteps } from "../io/npy-stream.js";
import { openTraceStream, type ReadLoadsOptions, readTrace } from "../io/read.js";
import { expandLoadPath, readRankTraces } from "../io/sources.js";

/** A trace opened for a simulation, and how to release it. */
export interface OpenedTrace {
  /** The trace: read whole, or (a C-order `.npy` for one simulation) read step by step. */
  readonly trace: LoadTrace | TraceSource;
  /** Closes the file a streamed trace keeps open (nothing otherwise); call it when done. */
  close(): void;
}

/**
 * Opens the trace of `eplb simulate`. Several files or a folder are SGLang rank dumps, summed
 * pass by pass (anything else is refused). One C-order `.npy` file without a key or slot
 * placement is streamed step by step (nothing but the current step in memory, files over 2 GiB
 * included), unless `whole` asks for it in memory: a sweep's worker threads share one copy, put
 * in shared memory (as int32 when it holds counts). Any other file is read whole by the format
 * readers.
 *
 * @param paths the trace files or folders (relative paths resolve against `cwd`)
 * @param cwd the working directory
 * @param options the readers' options: format, dict key, step slice, slot placement (a path,
 *   resolved against `cwd`); or a function returning them, called once the paths are known to
 *   exist, so that a missing file is reported before a mistaken option
 * @param read `whole`: read every step into shared memory; `onWarning`: told what the rank
 *   dumps' reader warns about (one line each), before anything else is read
 * @returns the trace and its `close`
 * @throws EplbFormatError for a file that cannot be read or does not hold a trace;
 *   EplbInputError for a step slice that selects nothing
 * @example
 * ```ts
 * const { trace, close } = openSimulationTrace(["trace.npy"], process.cwd(), {});
 * try {
 *   [trace.steps, trace.layers, trace.experts]; // [16, 4, 16]
 * } finally {
 *   close();
 * }
 * ```
 */
export function openSimulationTrace(
  paths: readonly string[],
  cwd: string,
  options: ReadLoadsOptions | (() => ReadLoadsOptions),
  read: { readonly whole?: boolean; readonly onWarning?: (text: string) => void } = {},
): OpenedTrace {
  const readOptions = (): ReadLoadsOptions => {
    const o = typeof options === "function" ? options() : options;
    const slots = o.slotPlacement;
    return {
      format: o.format,
      key: o.key,
      steps: o.steps,
      slotPlacement: slots === undefined ? undefined : resolve(cwd, slots),
    };
  };
  const located = paths.map((p) => resolve(cwd, p));
  if (located.length !== 1 || expandLoadPath(located[0])[0] !== located[0]) {
    const { trace, warnings } = readRankTraces(located, readOptions());
    for (const w of warnings) read.onWarning?.(w);
    return { trace, close: () => {} };
  }
  const resolved = readOptions();
  const stream = openTraceStream(located[0], resolved);
  if (!stream) return { trace: readTrace(located[0], resolved), close: () => {} };
  if (!read.whole) return { trace: stream, close: () => stream.close() };
  try {
    return { trace: readAllSteps(stream, { shared: true }), close: () => {} };
  } finally {
    stream.close();
  }
}

/** The cluster figures an `eplb plan` JSON records in its `metrics` (each absent when unknown). */
export interface RecordedPlanShape {
  gpus?: number;
  nodes?: number;
  groups?: number;
  policy?: string;
  mode?: string;
}

/**
 * The cluster figures an `eplb plan` JSON records beside its placement (`metrics.gpus`, `nodes`,
 * `groups`, `policy`, `mode`), so that a report on that placement needs no flags for them.
 * Anything else (another format, a broken file, figures that are not positive integers) gives
 * no figures: reading the placement itself reports broken files.
 *
 * @param path the placement file (relative paths resolve against `cwd`)
 * @param cwd the working directory
 * @returns the recorded figures, or `{}`
 * @example
 * ```ts
 * const metrics = { gpus: 8, nodes: 2, groups: 4, policy: "deepseek", mode: "hierarchical" };
 * writeFileSync("plan.json", JSON.stringify({ phy2log: [[0, 1]], metrics }));
 * recordedPlanShape("plan.json", process.cwd());
 * // { gpus: 8, nodes: 2, groups: 4, policy: "deepseek", mode: "hierarchical" }
 * recordedPlanShape("init.pt", process.cwd()); // {}
 * ```
 */
export function recordedPlanShape(path: string, cwd: string): RecordedPlanShape {
  if (extname(path).toLowerCase() !== ".json") return {};
  try {
    const json = JSON.parse(readFileSync(resolve(cwd, path), "utf8"));
    const m = json?.metrics;
    if (m === null || typeof m !== "object") return {};
    const int = (v: unknown) =>
      Number.isInteger(v) && (v as number) > 0 ? (v as number) : undefined;
    return {
      gpus: int(m.gpus),
      nodes: int(m.nodes),
      groups: int(m.groups),
      policy: typeof m.policy === "string" ? m.policy : undefined,
      mode: typeof m.mode === "string" ? m.mode : undefined,
    };
  } catch {
    // Not ours to judge here: reading the placement reports broken files properly.
    return {};
  }
}
