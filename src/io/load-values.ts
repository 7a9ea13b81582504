// Loads, traces and what a file holds, from a file's value: the readers' top layer, which tells
// SGLang's recorder dumps (src/io/sglang.ts) from plain arrays (src/io/interpret.ts). Apart from
// interpret.ts so that the SGLang reader can use interpret.ts's checks without an import cycle.

import type { LoadMatrix } from "../core/model/matrix.js";
import type { Placement } from "../core/model/placement.js";
import { EplbFormatError } from "./errors.js";
import {
  checkLoadShape,
  checkLoads,
  type Float64Trace,
  findLoadArray,
  type InterpretOptions,
  PLACEMENT_KEYS,
  placementFromValue,
  selectSteps,
} from "./interpret.js";
import { checkStatUse, sglangCollect, sglangDumpKind } from "./sglang.js";
import { foldSlots, slotFoldFor, vllmStaleRows, vllmWindowStart } from "./slot-fold.js";
import { type FileValue, isFileObject } from "./value.js";

/**
 * Reads loads `[layers, experts]` from a file's value. 3-D values `[steps, layers, experts]` are
 * summed over the steps, or over the `steps` slice. With `slots` (a placement) the array is per
 * physical slot, as vLLM's `expert_load_window` counts, and each slot's load is added to the
 * expert it holds. Loads must be finite and >= 0, with at least one layer and one expert.
 *
 * @example
 * ```ts
 * loadsFromValue({ logical_count: [[[1, 2]], [[3, 4]]] }, "dump.json", { limit: 1e6 });
 * // { layers: 1, experts: 2, data: Float64Array [4, 6] }
 * ```
 */
export function loadsFromValue(
  value: FileValue,
  file: string,
  options: InterpretOptions & {
    readonly steps?: string;
    readonly slots?: Placement;
    /** Told, in one line, when per-slot loads were folded into experts (and by which map). */
    readonly onFold?: (text: string) => void;
    /**
     * Told, in one line naming the file, what makes the loads doubtful: vLLM rows older than the
     * map, SGLang records left out (see `sglang.ts`).
     */
    readonly onWarning?: (text: string) => void;
  },
): LoadMatrix {
  const { layers, experts, data } = collect(value, file, options, true).trace;
  return { layers, experts, data };
}

/**
 * Reads a trace `[steps, layers, experts]` from a file's value (2-D values are one step),
 * optionally sliced over the steps and folded from physical slots to experts as in
 * {@link loadsFromValue}. Every element is checked to be finite and >= 0.
 *
 * @example
 * ```ts
 * traceFromValue([[[1, 2]], [[3, 4]], [[5, 6]]], "t.json", { limit: 1e6, steps: "1:" });
 * // { steps: 2, layers: 1, experts: 2, data: Float64Array [3, 4, 5, 6] }
 * ```
 */
export function traceFromValue(
  value: FileValue,
  file: string,
  options: InterpretOptions & {
    readonly steps?: string;
    readonly slots?: Placement;
    readonly onWarning?: (text: string) => void;
  },
): Float64Trace {
  return collect(value, file, options, false).trace;
}

/**
 * The shared body of loads and trace reading: find the array, validate it, select steps, fold
 * slots, and either stack the selected steps (a trace) or sum them (loads) in one pass.
 */
function collect(
  value: FileValue,
  file: string,
  options: InterpretOptions & {
    readonly steps?: string;
    readonly slots?: Placement;
    readonly onFold?: (text: string) => void;
    readonly onWarning?: (text: string) => void;
  },
  sum: boolean,
): { rank: number; trace: Float64Trace } {
  // SGLang's recorder dumps mean more than their largest array (a given key reads that entry).
  const dump = options.key === undefined ? sglangDumpKind(value) : undefined;
  if (dump === "stat") checkStatUse(file, options.steps, sum);
  else if (dump !== undefined) return sglangCollect(value, file, options, sum);
  const { name, tensor } = findLoadArray(value, file, options);
  const { shape } = tensor;
  if (shape.length !== 2 && shape.length !== 3) {
    throw new EplbFormatError(
      file,
      `${name} has shape [${shape.join(", ")}]: expected [layers, experts] or [steps, layers, experts]`,
    );
  }
  const allSteps = shape.length === 3 ? shape[0] : 1;
  const layers = shape[shape.length - 2];
  const width = shape[shape.length - 1];
  if (allSteps === 0 || layers === 0 || width === 0) {
    throw new EplbFormatError(file, `${name} has shape [${shape.join(", ")}]: it is empty`);
  }
  checkLoadShape(layers, width, name, file);
  checkLoads(tensor.data, shape, name, file);
  const fold = slotFoldFor(value, name, file, options.slots);
  const ring = vllmWindowStart(value, name, allSteps, file);
  if (name === "expert_load_window" && ring === undefined && allSteps > 1) {
    if (options.steps !== undefined) {
      throw new EplbFormatError(
        file,
        "--steps cannot select rows of vLLM's expert_load_window: it is a ring buffer written " +
          "at a moving index, so its rows are not in time order (drop --steps to sum the window, " +
          "or save expert_load_window_step in the file)",
      );
    }
    if (!sum && options.key === undefined) {
      // Replaying the rows in stored order would be a silently shuffled trace.
      throw new EplbFormatError(
        file,
        "vLLM's expert_load_window is a ring buffer written at a moving index, so its rows are " +
          "not steps in time order and it is no trace to replay (save expert_load_window_step " +
          "in the file to give the order, or pass --key expert_load_window to replay the rows " +
          "in stored order)",
      );
    }
  }
  const { start, step, count } = selectSteps(options.steps, allSteps);
  if (fold && (fold.layers !== layers || fold.slots !== width)) {
    throw new EplbFormatError(
      file,
      `${name} has ${layers} layers x ${width} slots but the ${fold.source} has ` +
        `${fold.layers} layers x ${fold.slots} slots`,
    );
  }
  const experts = fold ? fold.experts : width;
  if (fold) {
    options.onFold?.(
      `${name} [${shape.join(", ")}] counted per slot, folded into ${experts} experts by the ${fold.source}`,
    );
    const selected = Array.from({ length: count }, (_, k) => start + k * step);
    const stale = vllmStaleRows(value, name, tensor.data, allSteps, selected, ring, file);
    if (stale) {
      options.onWarning?.(
        `${file}: ${staleRowsWarning(name, stale, allSteps, ring !== undefined)}`,
      );
    }
  }
  const inSize = layers * width;
  const outSize = layers * experts;
  const src = tensor.data;
  // A whole 2-D/3-D tensor taken as is needs no copy.
  if (!fold && !ring && count === allSteps && (!sum || count === 1)) {
    return { rank: shape.length, trace: { steps: count, layers, experts, data: src } };
  }
  const data = new Float64Array((sum ? 1 : count) * outSize);
  for (let k = 0; k < count; k++) {
    // In time order: a vLLM ring buffer's oldest row is the next one it would write.
    const at = ring ? (ring + start + k * step) % allSteps : start + k * step;
    const from = at * inSize;
    const to = sum ? 0 : k * outSize;
    if (fold) {
      foldSlots(fold, src, from, data, to, shape.length === 3 ? `${name}[${at}]` : name, file);
    } else if (sum) {
      for (let i = 0; i < inSize; i++) data[i] += src[from + i];
    } else {
      data.set(src.subarray(from, from + inSize), to);
    }
  }
  return { rank: shape.length, trace: { steps: sum ? 1 : count, layers, experts, data } };
}

/** The one-line warning for window rows counted before vLLM's last rearrangement. */
function staleRowsWarning(
  name: string,
  { since, stale }: { since: number; stale: number },
  rows: number,
  ordered: boolean,
): string {
  const fix =
    since === 0
      ? "no row was counted since: save the state later"
      : ordered
        ? `pass --steps -${since}: to read only the rows counted since`
        : `save expert_load_window_step with it to select the rows counted since (--steps -${since}:)`;
  return (
    `${name}: ${stale} of its ${rows} rows were counted before vLLM's last expert rearrangement ` +
    `(expert_rearrangement_step ${since}; vLLM does not clear the window when it rearranges), ` +
    `under another placement than the map they are folded by, so their tokens go to the wrong ` +
    `experts; ${fix}, or save the state at least window_size steps after a rearrangement`
  );
}

/**
 * What a file holds, for commands that accept several kinds (`eplb convert`): a placement when
 * it has a placement key or an engine placement layout, else loads (2-D) or a trace (3-D).
 *
 * @example
 * ```ts
 * classifyValue({ phy2log: [[0, 1]] }, "x.json", { limit: 1e6 }).kind; // "placement"
 * ```
 */
export function classifyValue(
  value: FileValue,
  file: string,
  options: InterpretOptions,
):
  | { kind: "placement"; placement: Placement }
  | { kind: "loads"; loads: LoadMatrix }
  | { kind: "trace"; trace: Float64Trace } {
  if (
    isFileObject(value) &&
    options.key === undefined &&
    [...PLACEMENT_KEYS, "layer_list", "initial_global_assignments"].some((k) =>
      Object.hasOwn(value, k),
    )
  ) {
    return { kind: "placement", placement: placementFromValue(value, file, options) };
  }
  const dump = options.key === undefined ? sglangDumpKind(value) : undefined;
  // An SGLang dump's rows are not a trace to convert (stat: a ring; per_pass: records): its loads.
  const { rank, trace } = collect(value, file, options, dump !== undefined);
  if (rank === 2 || dump !== undefined) {
    return {
      kind: "loads",
      loads: { layers: trace.layers, experts: trace.experts, data: trace.data },
    };
  }
  return { kind: "trace", trace };
}
