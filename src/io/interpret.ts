import { EplbInputError } from "../core/model/errors.js";
import { MAX_LOAD_TOTAL, MAX_SHAPE } from "../core/model/limits.js";
import type { LoadMatrix } from "../core/model/matrix.js";
import { type Placement, placementFromPhy2log } from "../core/model/placement.js";
import type { LoadTrace } from "../core/traces/estimators.js";
import { printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import { checkStatUse, sglangCollect, sglangDumpKind } from "./sglang.js";
import {
  foldSlots,
  slotFoldFor,
  VLLM_MAP_KEYS,
  VLLM_SLOT_KEYS,
  vllmWindowStart,
} from "./slot-fold.js";
import { describe, isTensor, MAX_DIMS, nestedToTensor, type Tensor } from "./tensor.js";
import { type FileValue, isFileObject } from "./value.js";

/**
 * A {@link LoadTrace} as the whole-file readers return it: every value decoded to float64,
 * row-major `[steps][layers][experts]` (the load of expert `e` in layer `l` at step `t` is
 * `data[(t * layers + l) * experts + e]`).
 */
export interface Float64Trace extends LoadTrace {
  readonly data: Float64Array;
}

/** Dict keys that hold loads, in the order they are looked for. */
export const LOAD_KEYS = ["logical_count", "weight", "loads", "hotness", "counts"] as const;
/** Dict keys that hold a `phy2log` placement `[layers, slots]`. */
export const PLACEMENT_KEYS = ["physical_to_logical_map", "phy2log"] as const;

/** Options shared by the value interpreters. */
export interface InterpretOptions {
  /** Which dict entry (or safetensors tensor) to use instead of looking one up by name. */
  readonly key?: string;
  /**
   * Upper bound on elements built from nested lists; pass the file's byte length (every element
   * costs at least one byte in any honest encoding, while shared pickle lists could claim more).
   */
  readonly limit: number;
}

/**
 * Finds the array of loads in a file's value: the value itself when it is an array or tensor, the
 * `key` entry when given, else the first of {@link LOAD_KEYS} and vLLM's `expert_load_window`,
 * `expert_load_pass`, SGLang's `{"shape", "counts"}`
 * fixture form, or the only (else first) 2-D or 3-D array among the dict's entries.
 *
 * @example
 * ```ts
 * findLoadArray({ rank: 0, logical_count: [[1, 2]] }, "dump.json", { limit: 1e6 });
 * // { name: "logical_count", tensor: { dtype: "float64", shape: [1, 2], ... } }
 * ```
 */
export function findLoadArray(
  value: FileValue,
  file: string,
  options: InterpretOptions,
): { name: string; tensor: Tensor } {
  if (!isFileObject(value))
    return { name: "loads", tensor: toTensor(value, file, "loads", options) };
  if (options.key !== undefined) return entry(value, options.key, file, options);
  if (Array.isArray(value.shape) && value.counts !== undefined) {
    return { name: "counts", tensor: shapedCounts(value.shape, value.counts, file, options) };
  }
  for (const k of [...LOAD_KEYS, ...VLLM_SLOT_KEYS]) {
    if (Object.hasOwn(value, k)) return entry(value, k, file, options);
  }
  for (const [k, v] of Object.entries(value)) {
    const isMap = PLACEMENT_KEYS.includes(k as never) || VLLM_MAP_KEYS.includes(k as never);
    if (!isMap && (rank(v) === 2 || rank(v) === 3)) {
      return entry(value, k, file, options);
    }
  }
  const names = Object.keys(value);
  if (names.length > 0 && names.every((n) => /^\d+_\d+$/.test(n))) {
    throw new EplbFormatError(
      file,
      'its tensors are named "{iteration}_{layer}": one rank of TensorRT-LLM expert statistics; ' +
        "pass the folder holding meta_info.json and every rank{r}.safetensors instead",
    );
  }
  throw new EplbFormatError(
    file,
    `no loads found: expected a 2-D/3-D array or a dict with ${LOAD_KEYS.join(", ")}` +
      ` (keys present: ${keyList(value)})`,
  );
}

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
  options: InterpretOptions & { readonly steps?: string; readonly slots?: Placement },
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

/**
 * Refuses loads of more layers, or more experts (slots, for per-slot loads) per layer, than the
 * largest shape eplb plans (`MAX_SHAPE` in core/limits.ts).
 *
 * @param layers the layer count the file declares
 * @param width experts (or physical slots) per layer
 * @param name the array's name, for the message
 * @param file the file, for the message
 * @throws EplbFormatError naming the size and the limit
 * @example
 * ```ts
 * checkLoadShape(61, 256, "logical_count", "dump.pt"); // ok
 * ```
 */
export function checkLoadShape(layers: number, width: number, name: string, file: string): void {
  if (layers > MAX_SHAPE.layers || width > Math.max(MAX_SHAPE.experts, MAX_SHAPE.replicas)) {
    throw new EplbFormatError(
      file,
      `${name} has ${layers} layers x ${width} experts: beyond the largest shape eplb plans ` +
        `(${MAX_SHAPE.layers} layers, ${Math.max(MAX_SHAPE.experts, MAX_SHAPE.replicas)} per layer)`,
    );
  }
}

/**
 * Reads a placement from a file's value: a 2-D `phy2log` array (alone, or under
 * `physical_to_logical_map` / `phy2log` / `key`), a vllm-ascend expert map (`layer_list` of
 * `device_list`s, slots concatenated device by device), or a TensorRT-LLM config
 * (`initial_global_assignments`, one slot list per layer). `numExperts` defaults to the largest
 * expert id + 1; every expert needs a slot in every layer. `-1` is an empty slot (vLLM's elastic
 * expert parallelism) unless `allowEmpty` is false: a map an engine never pads (an SGLang dump's)
 * refuses it.
 *
 * @example
 * ```ts
 * placementFromValue({ phy2log: [[0, 1, 0]] }, "plan.json", { limit: 1e6 }).logcnt;
 * // Int32Array [2, 1]
 * ```
 */
export function placementFromValue(
  value: FileValue,
  file: string,
  options: InterpretOptions & {
    readonly numExperts?: number;
    readonly allowEmpty?: boolean;
    /** Told (one line) what a reader of the engine would see differently, e.g. a vllm-ascend
     * device that lists an expert twice. */
    readonly onWarning?: (text: string) => void;
  },
): Placement {
  const allowEmpty = options.allowEmpty ?? true;
  const { name, rows, slotsPerDevice } = findPlacementRows(value, file, options);
  if (slotsPerDevice !== undefined && options.onWarning) {
    const twice = vllmAscendDuplicates(rows, slotsPerDevice);
    if (twice) {
      options.onWarning(
        `layer_list[${twice.layer}].device_list[${twice.device}] lists expert ${twice.expert} ` +
          `twice (${twice.pairs} (layer, device) pairs in all): vllm-ascend gives one copy a ` +
          "local slot and offsets every rank by rank 0's distinct experts, so it does not " +
          "serve this map as written",
      );
    }
  }
  let max = -1;
  for (let l = 0; l < rows.length; l++) {
    const row = rows[l];
    for (let s = 0; s < row.length; s++) {
      const e = row[s];
      // -1 is an empty slot: vLLM's elastic expert parallelism writes it for unused slots.
      if (e === -1 && allowEmpty) continue;
      if (!Number.isInteger(e) || e < 0 || e > 0x7fffffff) {
        throw new EplbFormatError(
          file,
          `${name}[${l}][${s}] is ${e}: slots must hold expert ids >= 0` +
            (allowEmpty ? " or -1 (an empty slot)" : ""),
        );
      }
      if (e > max) max = e;
    }
  }
  const numExperts = options.numExperts ?? max + 1;
  try {
    return placementFromPhy2log(rows, numExperts, name, allowEmpty);
  } catch (error) {
    if (error instanceof EplbInputError) throw new EplbFormatError(file, error.message);
    throw error;
  }
}

/** The first vllm-ascend device listing an expert twice, and how many (layer, device) do. */
function vllmAscendDuplicates(
  rows: readonly Float64Array[],
  perDevice: number,
): { layer: number; device: number; expert: number; pairs: number } | null {
  let first: { layer: number; device: number; expert: number } | null = null;
  let pairs = 0;
  for (let l = 0; l < rows.length; l++) {
    const row = rows[l];
    for (let d = 0; d * perDevice < row.length; d++) {
      const seen = new Set<number>();
      for (let j = d * perDevice; j < (d + 1) * perDevice; j++) {
        const e = row[j];
        if (!seen.has(e)) {
          seen.add(e);
          continue;
        }
        pairs++;
        first ??= { layer: l, device: d, expert: e };
        break;
      }
    }
  }
  return first && { ...first, pairs };
}

function findPlacementRows(
  value: FileValue,
  file: string,
  options: InterpretOptions,
): { name: string; rows: Float64Array[]; slotsPerDevice?: number } {
  let name = "phy2log";
  let tensor: Tensor | undefined;
  if (!isFileObject(value)) {
    tensor = toTensor(value, file, name, options);
  } else if (options.key !== undefined) {
    ({ name, tensor } = entry(value, options.key, file, options));
  } else {
    const k = PLACEMENT_KEYS.find((key) => Object.hasOwn(value, key));
    if (k) ({ name, tensor } = entry(value, k, file, options));
    else if (Object.hasOwn(value, "layer_list")) return vllmAscendRows(value, file, options);
    else if (Object.hasOwn(value, "initial_global_assignments"))
      return trtllmRows(value, file, options);
    else {
      throw new EplbFormatError(
        file,
        `no placement found: expected a 2-D array, ${PLACEMENT_KEYS.join(" or ")}, a vllm-ascend ` +
          `layer_list or TensorRT-LLM initial_global_assignments (keys present: ${keyList(value)})`,
      );
    }
  }
  if (tensor.shape.length !== 2 || tensor.shape[0] === 0 || tensor.shape[1] === 0) {
    throw new EplbFormatError(
      file,
      `${name} has shape [${tensor.shape.join(", ")}]: expected a non-empty [layers, slots]`,
    );
  }
  const [layers, slots] = tensor.shape;
  const rows: Float64Array[] = [];
  for (let l = 0; l < layers; l++) rows.push(tensor.data.subarray(l * slots, (l + 1) * slots));
  return { name, rows };
}

/**
 * vllm-ascend: `{moe_layer_count, layer_list: [{layer_id, device_count, device_list}]}`. Read by
 * list position, as vllm-ascend does (`expert_file_to_tensor` takes `layer_list[i]` for its i-th
 * MoE layer and `device_list[r]` for rank r; it never reads `layer_id` or `device_id`), and every
 * device's list must have the same length (vllm-ascend stacks them with `torch.tensor`).
 */
function vllmAscendRows(
  value: Record<string, FileValue>,
  file: string,
  options: InterpretOptions,
): { name: string; rows: Float64Array[]; slotsPerDevice: number } {
  const list = value.layer_list;
  if (!Array.isArray(list) || list.length === 0) {
    throw new EplbFormatError(file, "layer_list is not a non-empty list");
  }
  const count = value.moe_layer_count;
  if (count !== undefined && count !== list.length) {
    throw new EplbFormatError(
      file,
      `moe_layer_count is ${describe(count)} but layer_list has ${list.length} layers`,
    );
  }
  let perDevice = -1;
  const rows = list.map((layer, i) => {
    if (!isFileObject(layer) || !Array.isArray(layer.device_list)) {
      throw new EplbFormatError(file, `layer_list[${i}] has no device_list`);
    }
    const devices = layer.device_list;
    if (layer.device_count !== undefined && layer.device_count !== devices.length) {
      throw new EplbFormatError(
        file,
        `layer_list[${i}].device_count is ${describe(layer.device_count)} but device_list has ${devices.length}`,
      );
    }
    const parts = devices.map((device, g) => {
      const where = `layer_list[${i}].device_list[${g}]`;
      if (!isFileObject(device)) throw new EplbFormatError(file, `${where} is not an object`);
      const t = toTensor(device.device_expert ?? null, file, `${where}.device_expert`, options);
      if (t.shape.length !== 1)
        throw new EplbFormatError(file, `${where}.device_expert is not a list`);
      if (perDevice < 0) perDevice = t.data.length;
      if (t.data.length !== perDevice) {
        throw new EplbFormatError(
          file,
          `${where}.device_expert has ${t.data.length} experts but layer_list[0].device_list[0] has ${perDevice}: vllm-ascend needs equal device lists`,
        );
      }
      return t.data;
    });
    const row = new Float64Array(parts.length * perDevice);
    parts.forEach((data, g) => {
      row.set(data, g * perDevice);
    });
    return row;
  });
  return { name: "layer_list", rows, slotsPerDevice: perDevice };
}

/** TensorRT-LLM: `{num_slots, initial_global_assignments: {layer: [expert per slot]}}`. */
function trtllmRows(
  value: Record<string, FileValue>,
  file: string,
  options: InterpretOptions,
): { name: string; rows: Float64Array[] } {
  const assignments = value.initial_global_assignments;
  if (!isFileObject(assignments)) {
    throw new EplbFormatError(
      file,
      "initial_global_assignments is not a mapping of layer -> slots",
    );
  }
  const slots = value.num_slots;
  const keys = Object.keys(assignments);
  if (keys.length === 0) throw new EplbFormatError(file, "initial_global_assignments is empty");
  const layers = keys.map((k) => {
    const where = `initial_global_assignments[${printable(k)}]`;
    if (!/^\d+$/.test(k) || !Number.isSafeInteger(Number(k))) {
      throw new EplbFormatError(file, `${where}: layer keys must be integers below 2^53`);
    }
    const t = toTensor(assignments[k], file, where, options);
    if (t.shape.length !== 1) throw new EplbFormatError(file, `${where} is not a list of experts`);
    if (slots !== undefined && slots !== t.data.length) {
      throw new EplbFormatError(
        file,
        `${where} has ${t.data.length} slots but num_slots is ${describe(slots)}`,
      );
    }
    return { id: Number(k), data: t.data };
  });
  layers.sort((a, b) => a.id - b.id);
  for (let i = 1; i < layers.length; i++) {
    if (layers[i].id === layers[i - 1].id) {
      // "1" and "01" are two keys but one layer: which one the engine takes is unknowable.
      throw new EplbFormatError(
        file,
        `initial_global_assignments names layer ${layers[i].id} twice`,
      );
    }
  }
  return { name: "initial_global_assignments", rows: layers.map((l) => l.data) };
}

/**
 * Parses a python-like slice over `n` steps ("a:b", "a:", ":b", "-100:", "a:b:c", or one index
 * "a") into start, step and count, clamping like Python. An empty selection is an error.
 *
 * @example
 * ```ts
 * selectSteps("-2:", 10); // { start: 8, step: 1, count: 2 }
 * ```
 */
export function selectSteps(
  spec: string | undefined,
  n: number,
): { start: number; step: number; count: number } {
  if (spec === undefined) return { start: 0, step: 1, count: n };
  const m = /^\s*(-?\d+)?\s*(?::\s*(-?\d+)?\s*(?::\s*(\d+)?\s*)?)?$/.exec(spec);
  if (!m || spec.trim() === "") {
    throw new EplbInputError(
      "steps",
      spec,
      "must be a python-like slice such as 10:20, -100: or :50",
    );
  }
  const isSlice = spec.includes(":");
  if (!isSlice) {
    let i = Number(m[1]);
    if (i < 0) i += n;
    if (i < 0 || i >= n) throw new EplbInputError("steps", spec, `is out of range for ${n} steps`);
    return { start: i, step: 1, count: 1 };
  }
  const step = m[3] === undefined ? 1 : Number(m[3]);
  if (step < 1) throw new EplbInputError("steps", spec, "step must be >= 1");
  const clamp = (v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    let i = Number(v);
    if (i < 0) i += n;
    return Math.min(Math.max(i, 0), n);
  };
  const start = clamp(m[1], 0);
  const stop = clamp(m[2], n);
  const count = stop > start ? Math.ceil((stop - start) / step) : 0;
  if (count === 0) throw new EplbInputError("steps", spec, `selects none of the ${n} steps`);
  return { start, step, count };
}

/**
 * Checks that every load is finite and >= 0 (the first that is not is an {@link EplbFormatError}
 * naming its index in `shape` under `name`), and that they total at most `MAX_LOAD_TOTAL`.
 *
 * @example
 * ```ts
 * checkLoads(new Float64Array([1, -2]), [1, 2], "loads[7]", "t.npy");
 * // throws: t.npy: loads[7][0][1] (-2) must be finite and >= 0
 * ```
 */
export function checkLoads(
  data: Float64Array,
  shape: readonly number[],
  name: string,
  file: string,
): void {
  let total = 0;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    total += v;
    // One comparison on the hot path; the rare failure computes the index text.
    if (v >= 0 && v !== Number.POSITIVE_INFINITY) continue;
    let rest = i;
    const index: number[] = [];
    for (let d = shape.length - 1; d >= 0; d--) {
      index.unshift(rest % shape[d]);
      rest = Math.floor(rest / shape[d]);
    }
    throw new EplbFormatError(file, `${name}[${index.join("][")}] (${v}) must be finite and >= 0`);
  }
  // Each load may be finite while their sum is not: every balance figure would then be NaN.
  if (!(total <= MAX_LOAD_TOTAL)) {
    throw new EplbFormatError(
      file,
      `${name} sums to ${total}, beyond the ${MAX_LOAD_TOTAL} eplb accepts (larger loads overflow the balance figures)`,
    );
  }
}

function entry(
  dict: Record<string, FileValue>,
  key: string,
  file: string,
  options: InterpretOptions,
): { name: string; tensor: Tensor } {
  if (!Object.hasOwn(dict, key)) {
    throw new EplbFormatError(file, `no entry ${printable(key)} (keys present: ${keyList(dict)})`);
  }
  const v = dict[key];
  if (isFileObject(v) && Array.isArray(v.shape) && v.counts !== undefined) {
    return { name: key, tensor: shapedCounts(v.shape, v.counts, file, options) };
  }
  return { name: key, tensor: toTensor(v, file, key, options) };
}

function toTensor(value: FileValue, file: string, name: string, options: InterpretOptions): Tensor {
  if (isTensor(value)) return value;
  if (Array.isArray(value)) return nestedToTensor(value, Math.max(1, options.limit), file, name);
  throw new EplbFormatError(file, `${name} is ${describe(value)}, not an array`);
}

/** The fixture form `{"shape": [...], "counts": flat or nested}`. */
function shapedCounts(
  shape: FileValue[],
  counts: FileValue,
  file: string,
  options: InterpretOptions,
): Tensor {
  const t = toTensor(counts, file, "counts", options);
  if (
    shape.length > MAX_DIMS ||
    !shape.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0)
  ) {
    throw new EplbFormatError(file, "shape is not a list of sizes");
  }
  const dims = shape as number[];
  const numel = dims.reduce((a, b) => a * b, 1);
  if (numel !== t.data.length) {
    throw new EplbFormatError(
      file,
      `counts has ${t.data.length} elements but shape [${dims.join(", ")}] needs ${numel}`,
    );
  }
  if (t.shape.length > 1 && t.shape.join(",") !== dims.join(",")) {
    throw new EplbFormatError(
      file,
      `counts has shape [${t.shape.join(", ")}] but shape says [${dims.join(", ")}]`,
    );
  }
  return { dtype: t.dtype, shape: dims.slice(), data: t.data };
}

/** Dimensions of an array-like value without converting it (follows the first elements). */
function rank(value: FileValue): number {
  if (isTensor(value)) return value.shape.length;
  let r = 0;
  let v: FileValue = value;
  while (Array.isArray(v) && r <= MAX_DIMS) {
    r++;
    if (v.length === 0) break;
    v = v[0];
  }
  if (isTensor(v)) r += v.shape.length;
  return r;
}

function keyList(dict: Record<string, FileValue>): string {
  const keys = Object.keys(dict);
  const shown = keys.slice(0, 8).map((k) => printable(k, 30));
  return keys.length === 0 ? "none" : shown.join(", ") + (keys.length > 8 ? ", ..." : "");
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
