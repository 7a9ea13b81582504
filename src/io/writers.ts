import { firstGpuDuplicate } from "../core/blocks/distinct.js";
import { EplbInputError, requireInteger } from "../core/model/errors.js";
import {
  type Placement,
  placementViolation,
  toReferencePlacement,
} from "../core/model/placement.js";
import { torchSaveInt64 } from "./torch-write.js";

/**
 * The placement files `--output-format` can write, one per consumer:
 * - `deepseek`: the reference's names `{"phy2log", "log2phy", "logcnt"}` (plus `metrics` from
 *   `eplb plan`);
 * - `sglang`: `{"physical_to_logical_map"}` for `--init-expert-location`;
 * - `vllm`: vLLM's tensor names (`physical_to_logical_map`, `logical_to_physical_map`,
 *   `logical_replica_count`);
 * - `vllm-ascend`: the expert map JSON (`moe_layer_count`, `layer_list`, `device_list`);
 * - `trtllm`: TensorRT-LLM's MoE load balancer YAML (`num_slots`, `initial_global_assignments`).
 */
export const OUTPUT_FORMATS = ["deepseek", "sglang", "vllm", "vllm-ascend", "trtllm"] as const;

/** One of {@link OUTPUT_FORMATS}. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** Options of {@link formatPlacement}; each writer reads the ones it needs. */
export interface PlacementWriteOptions {
  /**
   * GPUs (EP ranks) the slots are spread over, GPU-major (`slotsPerGpu` consecutive slots each).
   * Required by `vllm-ascend` (one device list per GPU); checked against the slot count by the
   * others when given.
   */
  numGpus?: number;
  /**
   * `trtllm` only: the model layer index of the first MoE layer, since TensorRT-LLM keys
   * `initial_global_assignments` by model layer (DeepSeek-V3/R1: 3, its first 3 layers are
   * dense). Default 0.
   */
  firstLayer?: number;
  /** `deepseek` only: written as `metrics` beside the placement (what `eplb plan` reports). */
  metrics?: unknown;
}

/**
 * True when `name` is one of {@link OUTPUT_FORMATS}.
 *
 * @example
 * ```ts
 * isOutputFormat("sglang"); // true
 * isOutputFormat("onnx"); // false
 * ```
 */
export function isOutputFormat(name: string): name is OutputFormat {
  return (OUTPUT_FORMATS as readonly string[]).includes(name);
}

/**
 * The file extension each format is conventionally saved with.
 *
 * @example
 * ```ts
 * outputFormatExtension("trtllm"); // ".yaml"
 * outputFormatExtension("sglang"); // ".json"
 * ```
 */
export function outputFormatExtension(format: OutputFormat): ".json" | ".yaml" {
  return format === "trtllm" ? ".yaml" : ".json";
}

/**
 * Writes a placement in the given format and returns the file's text (ending in a newline).
 * Refuses an invalid placement and a GPU count that does not divide the slots, so no engine is
 * ever handed a file it would reject or misread.
 *
 * @example
 * ```ts
 * const p = placementFromPhy2log([[0, 1, 2, 0]], 3);
 * formatPlacement(p, "sglang");
 * // '{"physical_to_logical_map": [\n  [0, 1, 2, 0]\n]}\n'
 * formatPlacement(p, "trtllm", { numGpus: 2 });
 * // "num_slots: 4\nlayer_updates_per_iter: 0\ninitial_global_assignments:\n  0: [0, 1, 2, 0]\n"
 * ```
 */
export function formatPlacement(
  placement: Placement,
  format: OutputFormat,
  options: PlacementWriteOptions = {},
): string {
  switch (format) {
    case "deepseek":
      return deepseekPlacementJson(placement, options.metrics, options.numGpus);
    case "sglang":
      return sglangPlacementJson(placement, options.numGpus);
    case "vllm":
      return vllmPlacementJson(placement, options.numGpus);
    case "vllm-ascend":
      if (options.numGpus === undefined) {
        throw new EplbInputError(
          "numGpus",
          undefined,
          "is required for vllm-ascend (its expert map lists the experts of each device)",
        );
      }
      return vllmAscendExpertMap(placement, options.numGpus);
    case "trtllm":
      return trtllmLoadBalancerYaml(placement, options.numGpus, options.firstLayer);
    default:
      throw new EplbInputError(
        "format",
        format,
        `must be one of ${OUTPUT_FORMATS.join(", ")} (an output format)`,
      );
  }
}

/**
 * The reference's names as compact JSON: `{"phy2log", "log2phy", "logcnt"}` and, when given,
 * `metrics` (this is what `eplb plan` has always written).
 *
 * @example
 * ```ts
 * deepseekPlacementJson(placementFromPhy2log([[0, 1, 0]], 2));
 * // '{"phy2log":[[0,1,0]],"log2phy":[[[0,2],[1,-1]]],"logcnt":[[2,1]]}\n'
 * ```
 */
export function deepseekPlacementJson(
  placement: Placement,
  metrics?: unknown,
  numGpus?: number,
): string {
  checkPlacement(placement, numGpus, true);
  const ref = toReferencePlacement(placement);
  const out: Record<string, unknown> = {
    phy2log: ref.phy2log,
    log2phy: ref.log2phy,
    logcnt: ref.logcnt,
  };
  if (metrics !== undefined) out.metrics = metrics;
  return `${JSON.stringify(out)}\n`;
}

/**
 * SGLang's `--init-expert-location` file: `{"physical_to_logical_map": [[...], ...]}`, shape
 * `[layers, numReplicas]`. SGLang passes the file's keys as keyword arguments to
 * `ExpertLocationMetadata.init_by_mapping`, so the object holds that one key and nothing else.
 *
 * @example
 * ```ts
 * sglangPlacementJson(placementFromPhy2log([[0, 1, 0]], 2));
 * // '{"physical_to_logical_map": [\n  [0, 1, 0]\n]}\n'
 * ```
 */
export function sglangPlacementJson(placement: Placement, numGpus?: number): string {
  checkPlacement(placement, numGpus);
  return `{"physical_to_logical_map": ${rowsJson(phy2logRows(placement), "")}}\n`;
}

/**
 * SGLang's `--init-expert-location init.pt`: the bytes of
 * `torch.save({"physical_to_logical_map": tensor})`, an int64 tensor `[layers, slots]`. SGLang
 * `torch.load`s a path ending in `.pt` with `weights_only=True` and passes the dict's keys to
 * `init_by_mapping` as keyword arguments, so the dict holds that one key.
 *
 * @param placement the placement to save
 * @param numGpus when given, checked to divide the slots
 * @returns the `.pt` file's bytes
 * @throws EplbInputError for an invalid placement or a GPU count that does not divide the slots
 * @example
 * ```ts
 * const bytes = sglangPlacementTorch(placementFromPhy2log([[0, 1, 2, 0]], 3));
 * // torch.load(f, weights_only=True) -> {"physical_to_logical_map": tensor([[0, 1, 2, 0]])}
 * ```
 */
export function sglangPlacementTorch(placement: Placement, numGpus?: number): Uint8Array {
  checkPlacement(placement, numGpus);
  return torchSaveInt64({
    physical_to_logical_map: {
      shape: [placement.layers, placement.numReplicas],
      data: placement.phy2log,
    },
  });
}

/**
 * vLLM's EPLB state under its tensor names: `physical_to_logical_map` `[L, P]`,
 * `logical_to_physical_map` `[L, E, P - E + 1]` (each expert's slots in replica order, padded
 * with -1 to vLLM's width `num_redundant_experts + 1`), `logical_replica_count` `[L, E]`.
 *
 * @example
 * ```ts
 * vllmPlacementJson(placementFromPhy2log([[0, 1, 0]], 2));
 * // physical_to_logical_map [[0, 1, 0]], logical_to_physical_map [[[0, 2], [1, -1]]],
 * // logical_replica_count [[2, 1]]
 * ```
 */
export function vllmPlacementJson(placement: Placement, numGpus?: number): string {
  checkPlacement(placement, numGpus, true);
  const { layers, numReplicas: P, numExperts: E } = placement;
  const width = P - E + 1;
  const l2p: number[][][] = new Array(layers);
  const counts: number[][] = new Array(layers);
  for (let l = 0; l < layers; l++) {
    const rows: number[][] = new Array(E);
    for (let e = 0; e < E; e++) rows[e] = new Array(width).fill(-1);
    for (let s = 0; s < P; s++) {
      const e = placement.phy2log[l * P + s];
      if (e >= 0) rows[e][placement.replicaRank[l * P + s]] = s;
    }
    l2p[l] = rows;
    counts[l] = Array.from(placement.logcnt.subarray(l * E, (l + 1) * E));
  }
  const inner = "  ";
  return [
    "{",
    `${inner}"physical_to_logical_map": ${rowsJson(phy2logRows(placement), inner)},`,
    `${inner}"logical_to_physical_map": [\n${l2p
      .map((rows) => `${inner}${inner}${rowsJson(rows, inner + inner)}`)
      .join(",\n")}\n${inner}],`,
    `${inner}"logical_replica_count": ${rowsJson(counts, inner)}`,
    "}",
    "",
  ].join("\n");
}

/**
 * vllm-ascend's expert map JSON (`expert_map_path`): for every MoE layer, in list order, the
 * logical experts of each device's slots in slot order (`device_expert`), devices in rank order.
 * vllm-ascend reads both lists by position (`layer_list[i]` is its i-th MoE layer, `device_list[r]`
 * rank r; `layer_id` and `device_id` are written for people only) and needs equal-length device
 * lists. A device holding an expert twice is refused: vllm-ascend keeps one local slot per expert
 * and device and offsets every rank's slots by the number of distinct experts on rank 0, so such
 * a map sends tokens to slots holding other experts.
 *
 * @param placement the placement to write
 * @param numGpus the EP ranks (devices); must divide the slots
 * @returns the JSON text
 * @throws EplbInputError for an invalid placement, a GPU count that does not divide the slots, or
 *   a device holding an expert twice (the message names layer, device and expert)
 * @example
 * ```ts
 * JSON.parse(vllmAscendExpertMap(placementFromPhy2log([[0, 1, 2, 0]], 3), 2));
 * // {"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 2, "device_list": [
 * //   {"device_id": 0, "device_expert": [0, 1]}, {"device_id": 1, "device_expert": [2, 0]}]}]}
 * vllmAscendExpertMap(placementFromPhy2log([[0, 0, 1, 2]], 3), 2);
 * // throws: placement ("layer 0, device 0") holds expert 0 twice: vllm-ascend ...
 * ```
 */
export function vllmAscendExpertMap(placement: Placement, numGpus: number): string {
  checkPlacement(placement, numGpus);
  const dup = firstGpuDuplicate(placement, numGpus);
  if (dup !== null) {
    throw new EplbInputError(
      "placement",
      `layer ${dup.layer}, device ${dup.gpu}`,
      `holds expert ${dup.expert} twice: vllm-ascend offsets every rank's slots by the distinct experts of rank 0 and keeps one slot per expert and device, so that map would route tokens to the wrong experts; plan it with eplb plan --output-format vllm-ascend (--policy balanced), which keeps each GPU's experts distinct`,
    );
  }
  const { layers, numReplicas: P } = placement;
  const S = P / numGpus;
  const lines: string[] = ["{", `  "moe_layer_count": ${layers},`, '  "layer_list": ['];
  for (let l = 0; l < layers; l++) {
    lines.push("    {", `      "layer_id": ${l},`, `      "device_count": ${numGpus},`);
    lines.push('      "device_list": [');
    for (let g = 0; g < numGpus; g++) {
      const experts = Array.from(placement.phy2log.subarray(l * P + g * S, l * P + (g + 1) * S));
      const comma = g < numGpus - 1 ? "," : "";
      lines.push(`        {"device_id": ${g}, "device_expert": [${experts.join(", ")}]}${comma}`);
    }
    lines.push("      ]", l < layers - 1 ? "    }," : "    }");
  }
  lines.push("  ]", "}", "");
  return lines.join("\n");
}

/**
 * TensorRT-LLM's MoE load balancer YAML for a static placement: `num_slots`,
 * `layer_updates_per_iter: 0` (no online updates) and `initial_global_assignments`, mapping each
 * model layer index (`firstLayer + l`) to the expert of every slot, rank-major (rank `r` holds
 * slots `r * num_slots / ep_size ..`, our GPU-major order). TensorRT-LLM's config model forbids
 * other keys, so the file holds exactly these three.
 *
 * @example
 * ```ts
 * trtllmLoadBalancerYaml(placementFromPhy2log([[0, 1, 2, 0]], 3), 2, 3);
 * // "num_slots: 4\nlayer_updates_per_iter: 0\ninitial_global_assignments:\n  3: [0, 1, 2, 0]\n"
 * ```
 */
export function trtllmLoadBalancerYaml(
  placement: Placement,
  numGpus?: number,
  firstLayer = 0,
): string {
  checkPlacement(placement, numGpus);
  requireInteger("firstLayer", firstLayer, 0);
  const lines = [
    `num_slots: ${placement.numReplicas}`,
    "layer_updates_per_iter: 0",
    "initial_global_assignments:",
  ];
  const rows = phy2logRows(placement);
  for (let l = 0; l < rows.length; l++) lines.push(`  ${firstLayer + l}: [${rows[l].join(", ")}]`);
  lines.push("");
  return lines.join("\n");
}

/** `phy2log` as nested rows. */
function phy2logRows(p: Placement): number[][] {
  const rows: number[][] = new Array(p.layers);
  for (let l = 0; l < p.layers; l++) {
    rows[l] = Array.from(p.phy2log.subarray(l * p.numReplicas, (l + 1) * p.numReplicas));
  }
  return rows;
}

/** A 2-D integer array as JSON, one row per line (diffable, and still small). */
function rowsJson(rows: readonly (readonly number[])[], indent: string): string {
  const inner = `${indent}  `;
  return `[\n${rows.map((r) => `${inner}[${r.join(", ")}]`).join(",\n")}\n${indent}]`;
}

/**
 * Every writer's precondition: a valid placement, and slots that split evenly over the GPUs.
 * Empty slots (`-1`, read from a vLLM elastic-EP map) only go to formats that can say so (vLLM's
 * and eplb's own); SGLang, vllm-ascend and TensorRT-LLM would read `-1` as an expert.
 */
function checkPlacement(
  placement: Placement,
  numGpus: number | undefined,
  allowEmpty = false,
): void {
  const violation = placementViolation(placement);
  if (violation !== null) throw new EplbInputError("placement", violation, "must be valid");
  if (!allowEmpty) {
    const slot = placement.phy2log.indexOf(-1);
    if (slot >= 0) {
      const P = placement.numReplicas;
      throw new EplbInputError(
        "placement",
        `layer ${Math.floor(slot / P)} slot ${slot % P} empty (-1)`,
        "must fill every slot for this format (only the vllm and deepseek formats hold empty slots)",
      );
    }
  }
  if (numGpus !== undefined) {
    requireInteger("numGpus", numGpus, 1);
    if (placement.numReplicas % numGpus !== 0) {
      throw new EplbInputError(
        "numGpus",
        numGpus,
        `must divide the number of slots per layer (${placement.numReplicas})`,
      );
    }
  }
}
