import { existsSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { Placement } from "../core/model/placement.js";
import { printable } from "./bytes.js";
import { EplbFormatError, fileReadError, readFileBytes as readBytes } from "./errors.js";
import { checkLoads, type Float64Trace, selectSteps } from "./interpret.js";
import { readJson } from "./json.js";
import { readSafetensors } from "./safetensors.js";
import { isFileObject } from "./value.js";

/**
 * What a TensorRT-LLM expert statistics folder held, for the summary line and warnings.
 * `layerIds[i]` is the model layer index of row `i` of the loads (TensorRT-LLM keys layers by
 * the MoE module's `layer_idx`, the model's decoder layer, so DeepSeek-V3 starts at 3).
 */
export interface TrtllmStatisticsInfo {
  readonly ranks: number;
  /** The iterations summed (sorted), and how many the folder has in all. */
  readonly iterations: readonly number[];
  readonly totalIterations: number;
  readonly layerIds: readonly number[];
  /** `meta_info.json`'s `num_experts`: the bincount length (slots when a load balancer ran). */
  readonly numExperts: number;
  readonly topK?: number;
  /** Problems that do not make the sums wrong but that the user should see, one line each. */
  readonly warnings: readonly string[];
}

/** Names of the per-rank statistic files; `rank{r}_raw.safetensors` (raw routing) is not one. */
const RANK_FILE = /^rank(\d+)\.safetensors$/;
/** Tensor names `"{iteration}_{layer}"` as `expert_statistic.py` keys its records. */
const RECORD_KEY = /^(\d+)_(\d+)$/;

/**
 * True when `path` is a directory holding `meta_info.json`: the folder TensorRT-LLM's
 * `EXPERT_STATISTIC_PATH` names.
 *
 * @param path a file or directory path
 * @example
 * ```ts
 * isTrtllmStatisticsDir("stats"); // true (meta_info.json and rank*.safetensors in it)
 * ```
 */
export function isTrtllmStatisticsDir(path: string): boolean {
  try {
    return statSync(path).isDirectory() && existsSync(join(path, "meta_info.json"));
  } catch {
    return false;
  }
}

/**
 * Reads a TensorRT-LLM expert statistics folder (`tensorrt_llm/_torch/expert_statistic.py`:
 * `meta_info.json` with `num_experts`, `num_experts_per_token`, and one `rank{r}.safetensors` per
 * rank holding an int64 bincount `[num_experts]` per `"{iteration}_{layer}"`) the way the
 * TensorRT-LLM example `examples/wide_ep/ep_load_balancer/utils.py` does: every rank's counts
 * summed, iterations consecutive, every (iteration, layer) present. Rows are the layers in
 * increasing model layer index; steps are the iterations in increasing order, so `steps` slices
 * them in time order. With `slots` the counts are per slot (recorded with TensorRT-LLM's load
 * balancer on, which counts slot ids) and are folded into experts by that placement.
 *
 * @param dir the folder
 * @param options `steps`: a Python slice over the sorted iterations; `slots`: the placement the
 *   counts were recorded under; `sum`: add the selected iterations into one step
 * @throws EplbFormatError when a file is missing or malformed, a tensor name is not
 *   `"{iteration}_{layer}"`, a count vector has the wrong length, iterations skip, or an
 *   (iteration, layer) has no count in any rank
 * @example
 * ```ts
 * const { trace, info } = readTrtllmStatistics("stats", { sum: true });
 * // trace: { steps: 1, layers: 58, experts: 256, data }, info.layerIds[0] === 3
 * ```
 */
export function readTrtllmStatistics(
  dir: string,
  options: { readonly steps?: string; readonly slots?: Placement; readonly sum?: boolean } = {},
): { trace: Float64Trace; info: TrtllmStatisticsInfo } {
  const meta = readMeta(dir);
  const rankFiles = listRankFiles(dir);
  const warnings: string[] = [];
  // Summed over ranks as each file is read, so only one rank's file is held at a time: memory is
  // iterations x layers x experts, whatever the rank count.
  const sums = new Map<string, Float64Array>();
  const ranks: { name: string; size: number }[] = [];
  const iterSet = new Set<number>();
  const layerSet = new Set<number>();
  for (const name of rankFiles) {
    const path = join(dir, name);
    const records = readSafetensors(readBytes(path), path);
    for (const [key, tensor] of records) {
      const m = RECORD_KEY.exec(key);
      if (!m) {
        throw new EplbFormatError(
          path,
          `tensor ${printable(key)} is not named "{iteration}_{layer}" as TensorRT-LLM's expert statistics are`,
        );
      }
      if (tensor.shape.length !== 1 || tensor.shape[0] !== meta.numExperts) {
        throw new EplbFormatError(
          path,
          `${key} has shape [${tensor.shape.join(", ")}] but meta_info.json says num_experts ${meta.numExperts}`,
        );
      }
      checkLoads(tensor.data, tensor.shape, key, path);
      iterSet.add(Number(m[1]));
      layerSet.add(Number(m[2]));
      const sum = sums.get(key);
      if (sum) for (let e = 0; e < sum.length; e++) sum[e] += tensor.data[e];
      else sums.set(key, Float64Array.from(tensor.data));
    }
    ranks.push({ name, size: records.size });
  }
  const iterations = [...iterSet].sort((a, b) => a - b);
  const layerIds = [...layerSet].sort((a, b) => a - b);
  if (iterations.length === 0) {
    throw new EplbFormatError(dir, "the rank files hold no records (no iteration was recorded)");
  }
  if (iterations[iterations.length - 1] - iterations[0] + 1 !== iterations.length) {
    throw new EplbFormatError(
      dir,
      `iterations ${iterations[0]}-${iterations[iterations.length - 1]} skip some ` +
        `(${iterations.length} recorded): the statistics are incomplete`,
    );
  }
  for (const t of iterations) {
    for (const l of layerIds) {
      if (!sums.has(`${t}_${l}`)) {
        throw new EplbFormatError(
          dir,
          `no rank recorded layer ${l} in iteration ${t} although other layers and iterations ` +
            "were: the statistics are incomplete, rows would not align",
        );
      }
    }
  }
  const grid = iterations.length * layerIds.length;
  for (const r of ranks) {
    if (r.size < grid) {
      warnings.push(
        `${r.name} lacks ${grid - r.size} of the ${grid} (iteration, layer) counts the ` +
          "other ranks recorded; they count as 0 tokens from that rank",
      );
    }
  }
  if (layerIds[layerIds.length - 1] - layerIds[0] + 1 !== layerIds.length) {
    warnings.push(
      `the MoE layers are model layers ${summarizeIds(layerIds)} (not consecutive): row i of ` +
        "the loads is the i-th of them",
    );
  }
  const { start, step, count } = selectSteps(options.steps, iterations.length);
  const chosen = Array.from({ length: count }, (_, k) => iterations[start + k * step]);
  const slots = options.slots;
  if (slots && (slots.layers !== layerIds.length || slots.numReplicas !== meta.numExperts)) {
    throw new EplbFormatError(
      dir,
      `the statistics have ${layerIds.length} layers x ${meta.numExperts} slots but the slot ` +
        `placement has ${slots.layers} layers x ${slots.numReplicas} slots`,
    );
  }
  const experts = slots ? slots.numExperts : meta.numExperts;
  const layers = layerIds.length;
  const steps = options.sum ? 1 : count;
  const data = new Float64Array(steps * layers * experts);
  for (let k = 0; k < count; k++) {
    const base = (options.sum ? 0 : k) * layers * experts;
    for (let l = 0; l < layers; l++) {
      const key = `${chosen[k]}_${layerIds[l]}`;
      const out = base + l * experts;
      const counts = sums.get(key)!;
      if (slots) {
        const row = l * slots.numReplicas;
        for (let s = 0; s < counts.length; s++) data[out + slots.phy2log[row + s]] += counts[s];
      } else {
        for (let e = 0; e < experts; e++) data[out + e] += counts[e];
      }
    }
  }
  return {
    trace: { steps, layers, experts, data },
    info: {
      ranks: ranks.length,
      iterations: chosen,
      totalIterations: iterations.length,
      layerIds,
      numExperts: meta.numExperts,
      topK: meta.topK,
      warnings,
    },
  };
}

/**
 * The one-line description of what was read, for command summaries.
 *
 * @param info what {@link readTrtllmStatistics} returned
 * @example
 * ```ts
 * const { info } = readTrtllmStatistics("stats");
 * describeTrtllmStatistics(info);
 * // "TensorRT-LLM statistics: 2 ranks, iterations 100-103 (4 of 4), 3 MoE layers (model layers 3-5), 8 experts, top-2"
 * ```
 */
export function describeTrtllmStatistics(info: TrtllmStatisticsInfo): string {
  const its = info.iterations;
  const range =
    its.length === 1 ? `iteration ${its[0]}` : `iterations ${its[0]}-${its[its.length - 1]}`;
  return (
    `TensorRT-LLM statistics: ${info.ranks} rank${info.ranks === 1 ? "" : "s"}, ${range} ` +
    `(${its.length} of ${info.totalIterations}), ${info.layerIds.length} MoE layers ` +
    `(model layers ${summarizeIds(info.layerIds)}), ${info.numExperts} experts` +
    (info.topK === undefined ? "" : `, top-${info.topK}`)
  );
}

/** "3-6" for consecutive ids, else the first few and the last: "1, 3, 5, ..., 47". */
function summarizeIds(ids: readonly number[]): string {
  if (ids[ids.length - 1] - ids[0] + 1 === ids.length) {
    return ids.length === 1 ? `${ids[0]}` : `${ids[0]}-${ids[ids.length - 1]}`;
  }
  return ids.length <= 6
    ? ids.join(", ")
    : `${ids.slice(0, 4).join(", ")}, ..., ${ids[ids.length - 1]}`;
}

function readMeta(dir: string): { numExperts: number; topK?: number } {
  const path = join(dir, "meta_info.json");
  const meta = readJson(readBytes(path), path);
  if (!isFileObject(meta)) throw new EplbFormatError(path, "is not a JSON object");
  const n = meta.num_experts;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) {
    throw new EplbFormatError(
      path,
      `num_experts is ${printable(String(n))}: expected an integer >= 1`,
    );
  }
  const k = meta.num_experts_per_token;
  return { numExperts: n, topK: typeof k === "number" && Number.isSafeInteger(k) ? k : undefined };
}

function listRankFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (error) {
    throw fileReadError(dir, error);
  }
  const files = names
    .map((n) => ({ n, m: RANK_FILE.exec(n) }))
    .filter((f) => f.m !== null)
    .sort((a, b) => Number(a.m?.[1]) - Number(b.m?.[1]))
    .map((f) => f.n);
  if (files.length === 0) {
    throw new EplbFormatError(dir, "holds meta_info.json but no rank{r}.safetensors file");
  }
  return files;
}
