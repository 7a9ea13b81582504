import type { Placement } from "../core/model/placement.js";
import { EplbFormatError } from "./errors.js";
import { isTensor, type Tensor } from "./tensor.js";
import { type FileValue, isFileObject } from "./value.js";

/**
 * vLLM's per-slot load tensors (`vllm/distributed/eplb/eplb_state.py`): `expert_load_window`
 * `[window, layers, physical slots]` and `expert_load_pass` `[layers, physical slots]`. Their
 * last axis counts tokens per physical slot, never per logical expert.
 */
export const VLLM_SLOT_KEYS = ["expert_load_window", "expert_load_pass"] as const;

/** vLLM state tensors that are maps, not loads: never taken for loads by a key-less lookup. */
export const VLLM_MAP_KEYS = ["logical_to_physical_map", "logical_replica_count"] as const;

/**
 * How per-slot loads become per-expert loads: `map[l * slots + s]` is the logical expert slot
 * `s` of layer `l` holds, or -1 for an unused slot (vLLM's elastic EP pads the map with -1).
 */
export interface SlotFold {
  readonly layers: number;
  readonly slots: number;
  readonly experts: number;
  readonly map: ArrayLike<number>;
  /** Where the map comes from, for messages. */
  readonly source: string;
}

/**
 * Decides whether the loads array `name` of a file's value counts per physical slot, and with
 * which map to fold it into logical experts, as vLLM's `rearrange` does (`scatter_add_` of the
 * window through `physical_to_logical_map`):
 * - `slots` given (`--slot-placement`): fold with it; if the file holds its own
 *   `physical_to_logical_map`, the two must agree.
 * - a vLLM per-slot array ({@link VLLM_SLOT_KEYS}) beside a `physical_to_logical_map`: fold with
 *   that map (its -1 slots are unused).
 * - a vLLM per-slot array without a map: refused, since read as is it would be taken for loads
 *   per expert (right only by luck when slots == experts).
 * - anything else: no fold (undefined).
 *
 * @param value the file's value (a dict for the vLLM cases)
 * @param name the entry the loads were taken from
 * @param file file name for messages
 * @param slots the `--slot-placement`, if any
 * @throws EplbFormatError for a per-slot array without a map, a map that is not integer
 *   `[layers, slots]` with ids >= -1, or a map that disagrees with `slots`
 * @example
 * ```ts
 * const w = { dtype: "int64", shape: [3, 2, 6], data: new Float64Array(36).fill(1) };
 * const m = { dtype: "int64", shape: [2, 6], data: Float64Array.from([0, 1, 2, 3, 0, 1, 3, 2, 1, 0, 3, 3]) };
 * slotFoldFor({ expert_load_window: w, physical_to_logical_map: m }, "expert_load_window", "s.pt");
 * // { layers: 2, slots: 6, experts: 4, source: "physical_to_logical_map" }
 * ```
 */
export function slotFoldFor(
  value: FileValue,
  name: string,
  file: string,
  slots?: Placement,
): SlotFold | undefined {
  const perSlot = isFileObject(value) && (VLLM_SLOT_KEYS as readonly string[]).includes(name);
  const own =
    perSlot && isFileObject(value) && Object.hasOwn(value, "physical_to_logical_map")
      ? value.physical_to_logical_map
      : undefined;
  if (own !== undefined && !isTensor(own)) {
    throw new EplbFormatError(file, "physical_to_logical_map is not a tensor [layers, slots]");
  }
  const fileFold = own === undefined ? undefined : foldFromMap(own, value, file);
  if (slots) {
    const fold: SlotFold = {
      layers: slots.layers,
      slots: slots.numReplicas,
      experts: slots.numExperts,
      map: slots.phy2log,
      source: "slot placement",
    };
    if (fileFold && !sameMap(fileFold, fold)) {
      throw new EplbFormatError(
        file,
        "its physical_to_logical_map differs from --slot-placement: the window was recorded " +
          "under the file's own map, so drop --slot-placement (or pass the map it was recorded under)",
      );
    }
    return fold;
  }
  if (fileFold) return fileFold;
  if (perSlot) {
    throw new EplbFormatError(
      file,
      `${name} counts tokens per physical slot (vLLM), not per expert: pass --slot-placement ` +
        "FILE with the physical_to_logical_map it was recorded under (or save that map in the same file)",
    );
  }
  return undefined;
}

/** A vLLM `physical_to_logical_map` tensor checked and turned into a fold. */
function foldFromMap(map: Tensor, value: FileValue, file: string): SlotFold {
  const { shape, data } = map;
  if (shape.length !== 2 || shape[0] === 0 || shape[1] === 0) {
    throw new EplbFormatError(
      file,
      `physical_to_logical_map has shape [${shape.join(", ")}]: expected a non-empty [layers, slots]`,
    );
  }
  let max = -1;
  for (let i = 0; i < data.length; i++) {
    const e = data[i];
    if (!Number.isInteger(e) || e < -1 || e > 0x7fffffff) {
      const [l, s] = [Math.floor(i / shape[1]), i % shape[1]];
      throw new EplbFormatError(
        file,
        `physical_to_logical_map[${l}][${s}] is ${e}: slots hold expert ids >= 0, or -1 when unused`,
      );
    }
    if (e > max) max = e;
  }
  if (max < 0) throw new EplbFormatError(file, "physical_to_logical_map has no used slot");
  // vLLM sizes its logical tensors by num_logical_experts; prefer that when the file has it, so
  // an expert that holds no slot in any layer is still counted (with zero load).
  let experts = max + 1;
  const count = isFileObject(value) ? value.logical_replica_count : undefined;
  if (isTensor(count) && count.shape.length === 2 && count.shape[0] === shape[0]) {
    if (count.shape[1] < experts) {
      throw new EplbFormatError(
        file,
        `physical_to_logical_map holds expert ${max} but logical_replica_count has ${count.shape[1]} experts`,
      );
    }
    experts = count.shape[1];
  }
  return {
    layers: shape[0],
    slots: shape[1],
    experts,
    map: data,
    source: "physical_to_logical_map",
  };
}

function sameMap(a: SlotFold, b: SlotFold): boolean {
  if (a.layers !== b.layers || a.slots !== b.slots) return false;
  for (let i = 0; i < a.map.length; i++) if (a.map[i] !== b.map[i]) return false;
  return true;
}

/**
 * Adds one step of per-slot loads (`src` from `from`) to the experts the slots hold (`data` from
 * `to`). A slot mapped to -1 (unused) holds no expert: its load must be 0, else the file is
 * refused rather than the tokens dropped or given to the wrong expert.
 *
 * @param fold the map
 * @param src per-slot loads; the step starts at `from` (`[layers, slots]` row-major)
 * @param data per-expert sums; the step's `[layers, experts]` block starts at `to`
 * @param where the step's name for messages, e.g. `expert_load_window[3]`
 * @param file file name for messages
 * @throws EplbFormatError for a nonzero load on an unused slot
 * @example
 * ```ts
 * // 1 layer, 4 slots holding experts [0, 1, 0, 2]
 * const fold = { layers: 1, slots: 4, experts: 3, map: [0, 1, 0, 2], source: "physical_to_logical_map" };
 * const window = Float64Array.from([5, 1, 3, 2]);
 * const out = new Float64Array(3);
 * foldSlots(fold, window, 0, out, 0, "expert_load_window[0]", "state.pt");
 * // out = Float64Array [8, 1, 2]
 * ```
 */
export function foldSlots(
  fold: SlotFold,
  src: Float64Array,
  from: number,
  data: Float64Array,
  to: number,
  where: string,
  file: string,
): void {
  const { layers, slots, experts, map } = fold;
  for (let l = 0; l < layers; l++) {
    const row = l * slots;
    for (let s = 0; s < slots; s++) {
      const e = map[row + s];
      const v = src[from + row + s];
      if (e >= 0) data[to + l * experts + e] += v;
      else if (v !== 0) {
        throw new EplbFormatError(
          file,
          `${where}[${l}][${s}] is ${v} but the ${fold.source} marks slot ${s} of layer ${l} ` +
            "unused (-1): no expert to count those tokens for",
        );
      }
    }
  }
}

/**
 * Where vLLM's ring buffer `expert_load_window` starts in time, when the file says: vLLM writes
 * pass after pass at `expert_load_window_step` and then advances it, so the row it names is the
 * oldest (or a still unwritten zero row). Undefined for any other array, or when the file does
 * not hold `expert_load_window_step` (then the rows' time order is unknown).
 *
 * @param value the file's value
 * @param name the entry the loads were taken from
 * @param rows the window's length
 * @param file file name for messages
 * @throws EplbFormatError when `expert_load_window_step` is not an integer in `[0, rows)`
 * @example
 * ```ts
 * const w = { dtype: "int64", shape: [5, 2, 6], data: new Float64Array(60) };
 * vllmWindowStart({ expert_load_window: w, expert_load_window_step: 3 }, "expert_load_window", 5, "s.pt"); // 3
 * ```
 */
export function vllmWindowStart(
  value: FileValue,
  name: string,
  rows: number,
  file: string,
): number | undefined {
  if (name !== "expert_load_window" || !isFileObject(value)) return undefined;
  if (!Object.hasOwn(value, "expert_load_window_step")) return undefined;
  const raw = value.expert_load_window_step;
  const v = isTensor(raw) && raw.data.length === 1 ? raw.data[0] : raw;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v >= rows) {
    throw new EplbFormatError(
      file,
      `expert_load_window_step is ${String(v).slice(0, 30)}: expected an integer in [0, ${rows})`,
    );
  }
  return v;
}

/**
 * How many of the window rows a read selects were certainly counted before vLLM's last expert
 * rearrangement, when the file says: vLLM never clears `expert_load_window` when it rearranges
 * (nor when async EPLB commits a layer's new map), so for `window_size` steps afterwards its
 * oldest rows were counted under the previous placement while `physical_to_logical_map` already
 * holds the new one, and folding them by it gives their tokens to the wrong experts (vLLM's own
 * rearrangement avoids this only because `step_interval` >= `window_size` by default).
 * `expert_rearrangement_step` counts the steps since that rearrangement (reset to 0 there, +1
 * every step, dummy steps too), so at most that many rows are newer. With the ring's start known
 * (`ring`), a selected nonzero row older than the newest `since` rows is stale; without it, only
 * nonzero rows beyond `since` are certainly stale. Zero rows fold to nothing and never count.
 *
 * @param value the file's value
 * @param name the entry the loads were taken from
 * @param src the window's data, `[rows, layers, slots]` row-major
 * @param rows the window's length
 * @param selected time positions (0 = oldest) of the rows read, or stored positions without `ring`
 * @param ring the row that is oldest in time ({@link vllmWindowStart}), if known
 * @param file file name for messages
 * @returns `{ since, stale }` when the file holds `expert_rearrangement_step` and some selected
 *   row is certainly stale, else undefined
 * @throws EplbFormatError when `expert_rearrangement_step` is not an integer >= 0
 * @example
 * ```ts
 * const w = { dtype: "int32", shape: [3, 1, 2], data: Float64Array.from([1, 1, 1, 1, 1, 1]) };
 * const value = { expert_load_window: w, expert_rearrangement_step: 1 };
 * vllmStaleRows(value, "expert_load_window", w.data, 3, [0, 1, 2], 0, "s.pt"); // { since: 1, stale: 2 }
 * ```
 */
export function vllmStaleRows(
  value: FileValue,
  name: string,
  src: Float64Array,
  rows: number,
  selected: readonly number[],
  ring: number | undefined,
  file: string,
): { since: number; stale: number } | undefined {
  if (name !== "expert_load_window" || !isFileObject(value)) return undefined;
  if (!Object.hasOwn(value, "expert_rearrangement_step")) return undefined;
  const raw = value.expert_rearrangement_step;
  const since = isTensor(raw) && raw.data.length === 1 ? raw.data[0] : raw;
  if (typeof since !== "number" || !Number.isInteger(since) || since < 0) {
    throw new EplbFormatError(
      file,
      `expert_rearrangement_step is ${String(since).slice(0, 30)}: expected an integer >= 0`,
    );
  }
  if (since >= rows) return undefined;
  const size = src.length / rows;
  const nonzero = (stored: number) => {
    for (let i = stored * size; i < (stored + 1) * size; i++) if (src[i] !== 0) return true;
    return false;
  };
  let stale = 0;
  if (ring !== undefined) {
    for (const t of selected) if (t < rows - since && nonzero((ring + t) % rows)) stale++;
  } else {
    const used = selected.filter(nonzero).length;
    stale = Math.max(0, used - since);
  }
  return stale > 0 ? { since, stale } : undefined;
}
