/**
 * SGLang's expert-distribution recorder dumps, read as SGLang means them.
 *
 * What SGLang writes (sgl-project/sglang `python/sglang/srt/eplb/expert_distribution.py`, commit
 * 02295fe5ac5ccff3e8829800d50450351c56fb53; see docs/engines.md):
 * - `stat` / `stat_approx`: `{rank, logical_count, average_utilization_rate_over_window}` with
 *   `logical_count` int32 `[buffer_size, layers, logical experts]`, a ring buffer whose write
 *   position is not saved: rows are not in time order and unfilled rows are zero.
 * - `per_pass` / `per_token`: one file per rank, `{records, last_physical_to_logical_map}`; each
 *   record `{forward_pass_id, rank, gatherer_key, global_physical_count [layers, slots]}`, and in
 *   `per_token` mode also `topk_ids_of_layer [layers, tokens, 8]` (physical slot ids, -1 where
 *   the model's top-k leaves a column unused; newer SGLang sizes k to the model's top-k). Counts
 *   are per physical slot and fold onto logical experts through the map.
 * - `gatherer_key` names a record's scope: `"primary"`, the served model's pass. Newer SGLang can
 *   also record speculative-decoding draft passes in a scope of their own (its
 *   `_SINGLE_PASS_GATHERER_KEY_SPECULATIVE_DRAFT`, when the server argument
 *   `expert_distribution_recorder_capture_speculative_draft` is on); those are another model's
 *   routing, so eplb leaves every record of a scope other than `"primary"` out, with a warning
 *   ({@link OtherScopes}). The key's string is not in the sources read, hence "any but primary".
 */
import type { Placement } from "../core/model/placement.js";
import { EplbFormatError } from "./errors.js";
import {
  checkLoads,
  type Float64Trace,
  type InterpretOptions,
  placementFromValue,
  selectSteps,
} from "./interpret.js";
import { RepeatedRecords, recordFingerprint } from "./sglang-repeats.js";
import { describe, isTensor, nestedToTensor, type Tensor } from "./tensor.js";
import { type FileValue, isFileObject } from "./value.js";

/** The recorder modes whose dumps eplb tells apart (`stat_approx` dumps are `stat` dumps). */
export type SglangDumpKind = "stat" | "per_pass" | "per_token";

/** One record of a `per_pass` / `per_token` dump, its counts folded to logical experts. */
export interface SglangPass {
  readonly forwardPassId: number;
  readonly rank: number;
  /** Logical loads of this record, `[layers, experts]` row-major. */
  readonly loads: Float64Array;
  /** The record's physical counts, `[layers, slots]` row-major, as SGLang recorded them. */
  readonly physical: Float64Array;
  /** `per_token` only: `topk_ids_of_layer` `[layers, tokens, k]`, physical slot ids, -1 unused. */
  readonly topk?: Tensor;
}

/** A `per_pass` / `per_token` dump, read. */
export interface SglangPassDump {
  readonly kind: "per_pass" | "per_token";
  readonly layers: number;
  readonly slots: number;
  readonly experts: number;
  /** `last_physical_to_logical_map` as a placement. */
  readonly map: Placement;
  /** The records in file order (the `"primary"` scope only). */
  readonly passes: SglangPass[];
  /** Records left out because their `gatherer_key` is not `"primary"`: count per key. */
  readonly otherScopes: ReadonlyMap<string, number>;
}

/** The `gatherer_key` of the records that are the served model's own forward passes. */
const PRIMARY_SCOPE = "primary";

/**
 * Which SGLang recorder dump a file's value is, if any: `per_token` or `per_pass` (a dict with
 * `records`), `stat` (a dict with `rank` or `average_utilization_rate_over_window` beside a 3-D
 * `logical_count`; `stat_approx` dumps are the same). A bare 3-D `logical_count` is not a dump
 * (eplb's own traces and hand-made files use that name for time-ordered steps).
 *
 * @param value what a reader returned for the file
 * @returns the dump's kind, or undefined for any other value
 * @example
 * ```ts
 * const trace3d = { dtype: "int32", shape: [1000, 2, 4], data: new Float64Array(8000) };
 * const map = { dtype: "int64", shape: [2, 6], data: new Float64Array(12) };
 * sglangDumpKind({ rank: 0, logical_count: trace3d }); // "stat"
 * sglangDumpKind({ records: [], last_physical_to_logical_map: map }); // "per_pass"
 * ```
 */
export function sglangDumpKind(value: FileValue): SglangDumpKind | undefined {
  if (!isFileObject(value)) return undefined;
  if (Object.hasOwn(value, "records") && Array.isArray(value.records)) {
    const tokens = value.records.some(
      (r) => isFileObject(r) && Object.hasOwn(r, "topk_ids_of_layer"),
    );
    return tokens ? "per_token" : "per_pass";
  }
  const count = value.logical_count;
  if (
    count !== undefined &&
    (Object.hasOwn(value, "rank") ||
      Object.hasOwn(value, "average_utilization_rate_over_window")) &&
    dims(count) === 3
  ) {
    return "stat";
  }
  return undefined;
}

/** Dimensions of a tensor or nested list, following first elements. */
function dims(value: FileValue): number {
  if (isTensor(value)) return value.shape.length;
  let d = 0;
  let v: FileValue = value;
  while (Array.isArray(v) && d < 8) {
    d++;
    if (v.length === 0) break;
    v = v[0];
  }
  return d;
}

/**
 * The refusal for `--steps` on a `stat` dump: its rows are a ring buffer without the write
 * position, so no slice of rows means "the last N passes".
 *
 * @param file the file, for the message
 * @returns the error to throw
 * @example
 * ```ts
 * throw sglangStepsError("dump.pt"); // throws EplbFormatError: dump.pt: is an SGLang stat dump: logical_count is a ring buffer ...
 * ```
 */
export function sglangStepsError(file: string): EplbFormatError {
  return new EplbFormatError(
    file,
    "is an SGLang stat dump: logical_count is a ring buffer whose write position SGLang does not " +
      "save, so its rows are not in time order and --steps cannot select recent passes; drop " +
      "--steps (all rows are summed) or record in per_pass mode",
  );
}

/**
 * The refusals for a `stat` dump: `steps` (its rows are not in time order) and reading it as a
 * trace.
 *
 * @param file the file, for the message
 * @param steps the steps slice, if any
 * @param sum whether loads (true) or a trace (false) are wanted
 * @throws EplbFormatError for `steps` or a trace
 * @example
 * ```ts
 * checkStatUse("dump.pt", undefined, true); // fine: all rows are summed
 * ```
 */
export function checkStatUse(file: string, steps: string | undefined, sum: boolean): void {
  if (steps !== undefined) throw sglangStepsError(file);
  if (!sum) {
    throw new EplbFormatError(
      file,
      "is an SGLang stat dump: logical_count is a ring buffer whose write position SGLang does " +
        "not save, so its rows are not passes in time order and it is no trace to replay; " +
        "record in per_pass mode (or, for a dump recorded with buffer size -1, whose rows are " +
        "in order, pass --key logical_count)",
    );
  }
}

/**
 * A `per_pass` / `per_token` dump as loads (`sum`) or a trace: one step per forward pass (ranks
 * of a pass summed, passes in id order), physical counts folded through the dump's own map. What
 * `loadsFromValue` and `traceFromValue` return for such a dump.
 *
 * @param value the dump's value
 * @param file its name, for messages
 * @param options `limit`, the `steps` slice over passes; `slots` is refused (the dump has its map)
 * @param sum sum the selected passes (loads) or stack them (a trace)
 * @returns the trace and the rank of the data it stands for (3, or 2 for an empty dump's loads)
 * @throws EplbFormatError for a broken dump, a slot placement, or a trace of no pass
 * @example
 * ```ts
 * const value = readValue("dump_0.pt").value; // 4 passes of 3 layers x 8 experts
 * sglangCollect(value, "d.pt", { limit: 1e9, steps: "-2:" }, true).trace.data; // last 2 passes
 * ```
 */
export function sglangCollect(
  value: FileValue,
  file: string,
  options: InterpretOptions & {
    readonly steps?: string;
    readonly slots?: Placement;
    readonly onWarning?: (text: string) => void;
  },
  sum: boolean,
): { rank: number; trace: Float64Trace } {
  if (options.slots) {
    throw new EplbFormatError(
      file,
      "is an SGLang per_pass/per_token dump, folded through its own last_physical_to_logical_map; drop the slot placement",
    );
  }
  const byPass = new SglangPassSum();
  byPass.add(readSglangPassDump(value, file, options.limit), file);
  const skipped = byPass.scopes.warning();
  if (skipped) options.onWarning?.(skipped);
  const { trace: passes } = byPass.trace();
  const { layers, experts } = passes;
  const n = layers * experts;
  if (passes.steps === 0) {
    if (sum) return { rank: 2, trace: { steps: 1, layers, experts, data: new Float64Array(n) } };
    throw new EplbFormatError(
      file,
      "is an SGLang dump with no recorded forward pass (records is empty)",
    );
  }
  const { start, step, count } = selectSteps(options.steps, passes.steps);
  const data = new Float64Array((sum ? 1 : count) * n);
  for (let k = 0; k < count; k++) {
    const from = (start + k * step) * n;
    if (sum) for (let i = 0; i < n; i++) data[i] += passes.data[from + i];
    else data.set(passes.data.subarray(from, from + n), k * n);
  }
  return { rank: 3, trace: { steps: sum ? 1 : count, layers, experts, data } };
}

/**
 * Reads a `per_pass` or `per_token` dump: checks `last_physical_to_logical_map` (every slot an
 * expert id, every expert in some slot) and every record, and folds each record's physical counts
 * onto logical experts (a slot's count goes to the expert the map puts there). `per_token`
 * records are counted from `topk_ids_of_layer` (ignoring -1) as SGLang derives its own
 * `global_physical_count` from them. Records whose `gatherer_key` is a scope other than
 * `"primary"` (newer SGLang's speculative-decoding draft passes) are not read, only counted in
 * `otherScopes`.
 *
 * @param value the file's value (see {@link sglangDumpKind})
 * @param file the file, for messages
 * @param limit element bound for nested lists (the file's byte length)
 * @throws EplbFormatError when the map or a record is missing, misshapen or out of range
 * @example
 * ```ts
 * // rank 0's per_pass file: 4 passes of 3 layers x 8 experts
 * const dump = readSglangPassDump(readValue("dump_0.pt").value, "dump_0.pt", 1e6);
 * dump.passes.length; // 4
 * dump.passes[0].loads.length; // 24 (layers * experts)
 * ```
 */
export function readSglangPassDump(value: FileValue, file: string, limit: number): SglangPassDump {
  const kind = sglangDumpKind(value);
  if (!isFileObject(value) || (kind !== "per_pass" && kind !== "per_token")) {
    throw new EplbFormatError(file, "is not an SGLang per_pass / per_token dump");
  }
  if (!Object.hasOwn(value, "last_physical_to_logical_map")) {
    throw new EplbFormatError(
      file,
      "has SGLang records but no last_physical_to_logical_map to fold physical slots onto experts",
    );
  }
  // SGLang never pads its map with -1: every slot holds an expert.
  const map = placementFromValue(value, file, {
    limit,
    key: "last_physical_to_logical_map",
    allowEmpty: false,
  });
  const { layers, numReplicas: slots, numExperts: experts } = map;
  const records = value.records as FileValue[];
  const passes: SglangPass[] = [];
  const otherScopes = new Map<string, number>();
  records.forEach((record, i) => {
    // A draft model's passes route its own layers' experts: adding them would put its tokens
    // into the served model's loads. Records without a key (older hand-made dumps) are primary.
    const scope = isFileObject(record) ? record.gatherer_key : undefined;
    if (typeof scope === "string" && scope !== PRIMARY_SCOPE) {
      otherScopes.set(scope, (otherScopes.get(scope) ?? 0) + 1);
      return;
    }
    passes.push(readRecord(record, i, kind, file, map, limit));
  });
  return { kind, layers, slots, experts, map, passes, otherScopes };
}

/**
 * Collects, over the dumps of one recording, the records left out because their `gatherer_key`
 * is not `"primary"`, for one warning line.
 *
 * @example
 * ```ts
 * const scopes = new OtherScopes();
 * const dump = readSglangPassDump(readValue("dump_0.pt").value, "dump_0.pt", 1e9);
 * scopes.add(dump, "dump_0.pt");
 * scopes.warning(); // undefined when every record was "primary"
 * ```
 */
export class OtherScopes {
  /** Records left out. */
  records = 0;
  /** Their `gatherer_key`s, in the order met. */
  readonly keys: string[] = [];
  /** The files that held one, in the order met. */
  readonly files: string[] = [];

  /**
   * Counts a dump's left-out records.
   *
   * @param dump a dump read by {@link readSglangPassDump}
   * @param file its name, for the warning
   */
  add(dump: SglangPassDump, file: string): void {
    for (const [key, n] of dump.otherScopes) {
      this.records += n;
      if (!this.keys.includes(key)) this.keys.push(key);
      if (!this.files.includes(file)) this.files.push(file);
    }
  }

  /**
   * The one-line warning for what was left out, or undefined when nothing was.
   *
   * @returns the warning text, without the `warning: ` prefix
   */
  warning(): string | undefined {
    if (this.records === 0) return undefined;
    const f = this.files;
    const where = f.length === 1 ? f[0] : `${f.length} files (${f[0]}, ...)`;
    const keys = this.keys.map((k) => JSON.stringify(k)).join(", ");
    return (
      `${where}: ${this.records} record${this.records === 1 ? "" : "s"} with gatherer_key ${keys} left out: ` +
      `only "primary" records are the served model's forward passes (newer SGLang records ` +
      `speculative-decoding draft passes in a scope of their own)`
    );
  }
}

function readRecord(
  record: FileValue,
  i: number,
  kind: "per_pass" | "per_token",
  file: string,
  map: Placement,
  limit: number,
): SglangPass {
  const { layers, numReplicas: slots, numExperts: experts } = map;
  const where = `records[${i}]`;
  if (!isFileObject(record)) throw new EplbFormatError(file, `${where} is not a dict`);
  const id = record.forward_pass_id;
  const rank = record.rank;
  if (typeof id !== "number" || !Number.isSafeInteger(id)) {
    throw new EplbFormatError(file, `${where}.forward_pass_id is ${describe(id)}, not an integer`);
  }
  if (typeof rank !== "number" || !Number.isSafeInteger(rank) || rank < 0) {
    throw new EplbFormatError(file, `${where}.rank is ${describe(rank)}, not a rank`);
  }
  const topk =
    kind === "per_token" ? tensorAt(record, "topk_ids_of_layer", where, file, limit) : undefined;
  const physical = topk
    ? countTopk(topk, where, file, layers, slots)
    : physicalCounts(tensorAt(record, "global_physical_count", where, file, limit), where, file, [
        layers,
        slots,
      ]);
  const loads = new Float64Array(layers * experts);
  const p2l = map.phy2log;
  for (let l = 0; l < layers; l++) {
    for (let s = 0; s < slots; s++)
      loads[l * experts + p2l[l * slots + s]] += physical[l * slots + s];
  }
  return { forwardPassId: id, rank, loads, physical, ...(topk ? { topk } : {}) };
}

function tensorAt(
  record: Record<string, FileValue>,
  key: string,
  where: string,
  file: string,
  limit: number,
): Tensor {
  const v = record[key];
  // A dump re-saved as JSON holds nested lists.
  if (Array.isArray(v)) return nestedToTensor(v, Math.max(1, limit), file, `${where}.${key}`);
  if (!isTensor(v)) {
    throw new EplbFormatError(file, `${where}.${key} is ${describe(v ?? null)}, not a tensor`);
  }
  return v;
}

function physicalCounts(t: Tensor, where: string, file: string, shape: number[]): Float64Array {
  if (t.shape.join(",") !== shape.join(",")) {
    throw new EplbFormatError(
      file,
      `${where}.global_physical_count has shape [${t.shape.join(", ")}] but last_physical_to_logical_map is [${shape.join(", ")}]`,
    );
  }
  checkLoads(t.data, t.shape, `${where}.global_physical_count`, file);
  return t.data;
}

/** Per-slot counts of one record's `topk_ids_of_layer [layers, tokens, k]` (-1 = no choice). */
function countTopk(
  t: Tensor,
  where: string,
  file: string,
  layers: number,
  slots: number,
): Float64Array {
  if (t.shape.length !== 3 || t.shape[0] !== layers) {
    throw new EplbFormatError(
      file,
      `${where}.topk_ids_of_layer has shape [${t.shape.join(", ")}]: expected [${layers} layers, tokens, k]`,
    );
  }
  const per = t.shape[1] * t.shape[2];
  const out = new Float64Array(layers * slots);
  for (let l = 0; l < layers; l++) {
    for (let j = 0; j < per; j++) {
      const s = t.data[l * per + j];
      if (s === -1) continue;
      if (!Number.isInteger(s) || s < 0 || s >= slots) {
        throw new EplbFormatError(
          file,
          `${where}.topk_ids_of_layer holds ${s} in layer ${l}: slot ids are 0..${slots - 1} (or -1)`,
        );
      }
      out[l * slots + s]++;
    }
  }
  return out;
}

/**
 * Sums the records of SGLang `per_pass` / `per_token` dumps by forward pass, one dump at a time,
 * so that a recording of many ranks is never held whole: records with the same
 * `forward_pass_id` (the ranks of one pass, as SGLang all-reduces them) are added, logical loads
 * always and physical counts while every dump shares one map. A record whose logical content
 * repeats another rank's record of the same pass holds the same tokens (SGLang without DeepEP
 * routes every token on every rank: see `sglang-repeats.ts`) and is left out of the loads, so
 * each token counts once; {@link SglangPassSum.repeats} says what was left out. The physical
 * counts keep every record, as SGLang summed them for its balancedness log.
 *
 * @example
 * ```ts
 * const sum = new SglangPassSum();
 * const files = ["dump_0.pt", "dump_1.pt"]; // one per_pass file per rank
 * for (const f of files) sum.add(readSglangPassDump(readValue(f).value, f, 1e9), f);
 * sum.trace().trace.steps; // distinct forward passes
 * ```
 */
export class SglangPassSum {
  /** Logical experts, layers and slots of the first dump added (0 before). */
  layers = 0;
  experts = 0;
  slots = 0;
  /** Every rank seen. */
  readonly ranks = new Set<number>();
  /** The records skipped because another rank recorded the same tokens in the same pass. */
  readonly repeats = new RepeatedRecords();
  /** The records left out because their `gatherer_key` is not `"primary"`. */
  readonly scopes = new OtherScopes();
  private map: Int32Array | undefined;
  private sameMap = true;
  private readonly byId = new Map<number, { loads: Float64Array; physical: Float64Array }>();

  /**
   * Adds a dump's records.
   *
   * @param dump a dump read by {@link readSglangPassDump}
   * @param file its name, for the error and the repeats' warning
   * @throws EplbFormatError when the dump's layers or experts differ from the first one's
   */
  add(dump: SglangPassDump, file: string): void {
    this.scopes.add(dump, file);
    if (!this.map) {
      this.layers = dump.layers;
      this.experts = dump.experts;
      this.slots = dump.slots;
      this.map = dump.map.phy2log;
    } else if (dump.layers !== this.layers || dump.experts !== this.experts) {
      throw new EplbFormatError(
        file,
        `has ${dump.layers} layers x ${dump.experts} experts but the dumps before it ${this.layers} x ${this.experts}: dumps summed must be of one model`,
      );
    } else if (
      this.sameMap &&
      (dump.slots !== this.slots || dump.map.phy2log.some((e, i) => e !== this.map?.[i]))
    ) {
      this.sameMap = false;
      for (const v of this.byId.values()) v.physical = new Float64Array(0);
    }
    for (const p of dump.passes) {
      this.ranks.add(p.rank);
      const repeat = this.repeats.repeats(
        p,
        recordFingerprint(p, dump.map.phy2log, dump.slots),
        file,
      );
      let sum = this.byId.get(p.forwardPassId);
      if (!sum) {
        sum = {
          loads: new Float64Array(this.layers * this.experts),
          physical: new Float64Array(this.sameMap ? this.layers * this.slots : 0),
        };
        this.byId.set(p.forwardPassId, sum);
      }
      if (!repeat) for (let i = 0; i < sum.loads.length; i++) sum.loads[i] += p.loads[i];
      // SGLang's balancedness log sums every rank's counts, repeats included (a ratio: the
      // scale is harmless, and each rank's own replica choices are kept).
      for (let i = 0; i < sum.physical.length; i++) sum.physical[i] += p.physical[i];
    }
  }

  /**
   * The logical loads per forward pass, passes in id order.
   *
   * @returns a trace of one step per pass, and the pass ids
   */
  trace(): { trace: Float64Trace; passIds: number[] } {
    const passIds = [...this.byId.keys()].sort((a, b) => a - b);
    const n = this.layers * this.experts;
    const data = new Float64Array(passIds.length * n);
    for (let t = 0; t < passIds.length; t++) {
      data.set((this.byId.get(passIds[t]) as { loads: Float64Array }).loads, t * n);
    }
    const trace = { steps: passIds.length, layers: this.layers, experts: this.experts, data };
    return { trace, passIds };
  }

  /**
   * The physical counts of the passes `passIds`, in that order, as SGLang's recorder summed
   * them before logging its balancedness; undefined when the dumps' maps differ.
   *
   * @param passIds passes from {@link trace}
   * @returns `[passes][layers][slots]` row-major, with the slots and the map
   */
  physical(
    passIds: readonly number[],
  ): { slots: number; map: Int32Array; physical: Float64Array } | undefined {
    if (!this.sameMap || !this.map) return undefined;
    const n = this.layers * this.slots;
    const physical = new Float64Array(passIds.length * n);
    passIds.forEach((id, t) => {
      const sum = this.byId.get(id);
      if (sum) physical.set(sum.physical, t * n);
    });
    return { slots: this.slots, map: this.map, physical };
  }
}
