/**
 * The long CSV SGLang wrote before its recorder modes (before ~April 2025):
 * `expert_distribution_rank{r}_timestamp{t}.csv`, header `layer_id,expert_id,count`, one row per
 * (model layer, expert) pair that received tokens; absent pairs received none. Layer ids are the
 * model's (DeepSeek-V3's MoE layers are 3..60), expert ids logical (no redundancy then).
 */
import { decodeUtf8, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import type { FileObject } from "./value.js";

/** Expert ids above this are a broken file, not a model (the largest MoE models have ~1k). */
const MAX_EXPERTS = 1 << 16;

/** The header that marks the long format. */
const HEADER = /^\s*"?layer_id"?\s*,\s*"?expert_id"?\s*,\s*"?count"?\s*$/;

/**
 * True when a CSV's first non-blank line is the `layer_id,expert_id,count` header.
 *
 * @param bytes the file's bytes
 * @returns whether the long reader applies
 * @example
 * ```ts
 * isLongCsv(new TextEncoder().encode("layer_id,expert_id,count\n3,0,5\n")); // true
 * ```
 */
export function isLongCsv(bytes: Uint8Array): boolean {
  const head = new TextDecoder("utf-8", { fatal: false }).decode(bytes.subarray(0, 256));
  const first = head
    .replace(/^\uFEFF/, "")
    .split(/\r\n|\n|\r/)
    .find((l) => l.trim() !== "");
  return first !== undefined && HEADER.test(first);
}

/**
 * Reads a long CSV into `{layer_ids, counts}`: `counts` is `[layers, experts]` with one row per
 * distinct `layer_id` in ascending order (`layer_ids` says which), experts `0..max id`, absent
 * pairs 0 and repeated pairs summed.
 *
 * @param bytes the file's bytes
 * @param file the file, for messages
 * @returns the value, as the other readers return dicts
 * @throws EplbFormatError for a row that is not three integers >= 0, or no data rows
 * @example
 * ```ts
 * readLongCsv(new TextEncoder().encode("layer_id,expert_id,count\n3,1,5\n4,0,2\n"), "d.csv");
 * // { layer_ids: {shape: [2], data: [3, 4]}, counts: {shape: [2, 2], data: [0, 5, 2, 0]} }
 * ```
 */
export function readLongCsv(bytes: Uint8Array, file: string): FileObject {
  const text = decodeUtf8(bytes, file).replace(/^\uFEFF/, "");
  const lines = text.split(/\r\n|\n|\r/);
  const rows: [number, number, number][] = [];
  let header = false;
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === "") continue;
    if (!header) {
      header = true;
      continue;
    }
    const cells = line.split(",").map((c) => c.trim());
    const values = cells.map(Number);
    if (
      cells.length !== 3 ||
      !values.every((v, i) => cells[i] !== "" && Number.isSafeInteger(v) && v >= 0)
    ) {
      throw new EplbFormatError(
        file,
        `line ${n + 1} (${printable(line)}) is not layer_id,expert_id,count as integers >= 0`,
      );
    }
    rows.push(values as [number, number, number]);
  }
  if (rows.length === 0)
    throw new EplbFormatError(file, "has the layer_id,expert_id,count header but no rows");
  const layerIds = [...new Set(rows.map((r) => r[0]))].sort((a, b) => a - b);
  const rowOf = new Map(layerIds.map((id, i) => [id, i]));
  let experts = 0;
  for (const r of rows) experts = Math.max(experts, r[1] + 1);
  if (experts > MAX_EXPERTS) {
    throw new EplbFormatError(
      file,
      `expert_id ${experts - 1} is beyond any MoE model (at most ${MAX_EXPERTS - 1} is read)`,
    );
  }
  const data = new Float64Array(layerIds.length * experts);
  for (const [layer, expert, count] of rows) {
    data[(rowOf.get(layer) as number) * experts + expert] += count;
  }
  return {
    layer_ids: { dtype: "int64", shape: [layerIds.length], data: Float64Array.from(layerIds) },
    counts: { dtype: "int64", shape: [layerIds.length, experts], data },
  };
}
