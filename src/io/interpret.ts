import { EplbInputError } from "../core/model/errors.js";
import { MAX_LOAD_TOTAL, MAX_SHAPE } from "../core/model/limits.js";
import { type Placement, placementFromPhy2log } from "../core/model/placement.js";
import type { LoadTrace } from "../core/traces/estimators.js";
import { printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import { VLLM_MAP_KEYS, VLLM_SLOT_KEYS } from "./slot-fold.js";
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
 * refuses it. A TensorRT-LLM config with `layer_updates_per_iter` > 0 (the online balancer, which
 * moves the slots while serving) gives its starting placement with a warning, and is refused when
 * `slotCounts` says the placement is to fold slot counts (no single placement folds them).
 *
 * @throws EplbFormatError when no placement is found, or it is malformed or refused as above
 * @example
 * ```ts
 * placementFromValue({ phy2log: [[0, 1, 0]] }, "plan.json", { limit: 1e6 }).logcnt;
 * // Int32Array [2, 1]
 * ```
 */
export function placementFromValue(
  value: FileValue,
  file: string,
  options: InterpretOptions &
    EngineConfigOptions & {
      readonly numExperts?: number;
      readonly allowEmpty?: boolean;
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

/**
 * The GPU count a placement file's value states itself, if any: a vllm-ascend expert map lists
 * one device per GPU (`layer_list[0].device_list`, or its `device_count`); the other layouts do
 * not record it.
 *
 * @param value the file's value
 * @returns the count, or undefined when the value does not state a positive integer one
 * @example
 * ```ts
 * statedGpuCount({ layer_list: [{ device_count: 2, device_list: [{}, {}] }] }); // 2
 * statedGpuCount({ phy2log: [[0, 1]] }); // undefined
 * ```
 */
export function statedGpuCount(value: FileValue): number | undefined {
  if (!isFileObject(value) || !Array.isArray(value.layer_list)) return undefined;
  const first = value.layer_list[0];
  if (!isFileObject(first)) return undefined;
  const count = Array.isArray(first.device_list) ? first.device_list.length : first.device_count;
  return typeof count === "number" && Number.isInteger(count) && count > 0 ? count : undefined;
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

/** What placement readers tell about, or refuse in, an engine's own config file. */
interface EngineConfigOptions {
  /** Told (one line) what a reader of the engine would see differently, e.g. a vllm-ascend
   * device that lists an expert twice. */
  readonly onWarning?: (text: string) => void;
  /** The placement will fold counts per physical slot into experts (`--slot-placement`). */
  readonly slotCounts?: boolean;
}

function findPlacementRows(
  value: FileValue,
  file: string,
  options: InterpretOptions & EngineConfigOptions,
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
  options: InterpretOptions & EngineConfigOptions,
): { name: string; rows: Float64Array[] } {
  checkStaticAssignments(value.layer_updates_per_iter, file, options);
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
 * TensorRT-LLM's `layer_updates_per_iter` (an int, 0 by default, `MoeLoadBalancerConfig`): above
 * 0 the online load balancer starts from `initial_global_assignments` and rewrites that many
 * layers' slots every iteration, so the file is only where the slots started. Statistics recorded
 * under it count slot ids of placements that kept changing: folding them through the starting
 * one would give slot counts to the wrong experts, so that use is refused.
 */
function checkStaticAssignments(
  updates: FileValue | undefined,
  file: string,
  options: EngineConfigOptions,
): void {
  if (updates === undefined || updates === null || updates === 0) return;
  if (typeof updates !== "number" || !Number.isSafeInteger(updates) || updates < 0) {
    throw new EplbFormatError(
      file,
      `layer_updates_per_iter is ${describe(updates)}: expected an integer >= 0`,
    );
  }
  const online = `layer_updates_per_iter is ${updates}: TensorRT-LLM's online load balancer starts from initial_global_assignments and moves the slots while serving`;
  if (options.slotCounts) {
    throw new EplbFormatError(
      file,
      `${online}, so slot counts recorded under it belong to placements no file holds and cannot be folded into experts; record with a static config (layer_updates_per_iter: 0)`,
    );
  }
  options.onWarning?.(`${online}; eplb reads the starting placement`);
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
