import { duplicateGpuCount } from "../core/metrics.js";
import type { Placement } from "../core/placement.js";
import {
  formatPlacement,
  isOutputFormat,
  OUTPUT_FORMATS,
  type OutputFormat,
} from "../io/writers.js";
import { type Flags, integerFlag } from "./args.js";
import { type CliContext, UsageError } from "./command.js";

/** The `--output-format` and `--first-layer` flags of commands that write a placement. */
export const PLACEMENT_OUTPUT_OPTIONS = {
  "output-format": { type: "string" },
  "first-layer": { type: "string" },
} as const;

/** Help text lines for {@link PLACEMENT_OUTPUT_OPTIONS}. */
export const PLACEMENT_OUTPUT_HELP = `  --output-format NAME
                 the placement file to write [default: deepseek]
                   deepseek     {"phy2log", "log2phy", "logcnt"} (the reference's names)
                   sglang       {"physical_to_logical_map"} for --init-expert-location
                   vllm         physical_to_logical_map, logical_to_physical_map,
                                logical_replica_count (vLLM's EPLB state names)
                   vllm-ascend  expert map JSON (layer_list / device_list / device_expert)
                   trtllm       MoE load balancer YAML (num_slots, initial_global_assignments)
  --first-layer N
                 trtllm: model layer index of the first MoE layer, as TensorRT-LLM keys
                 layers by model index (DeepSeek-V3/R1: 3) [default: 0]`;

/**
 * The `--output-format` flag, `deepseek` when absent (also checks `--first-layer`, so a command
 * can reject bad output flags before doing any work).
 *
 * @example
 * ```ts
 * outputFormatFlag({ "output-format": "sglang" }); // "sglang"
 * outputFormatFlag({ "output-format": "onnx" });
 * // throws UsageError: --output-format ("onnx") must be one of deepseek, sglang, vllm, ...
 * ```
 */
export function outputFormatFlag(flags: Flags): OutputFormat {
  const v = flags["output-format"] ?? "deepseek";
  if (typeof v !== "string" || !isOutputFormat(v)) {
    throw new UsageError(
      `--output-format (${JSON.stringify(v)}) must be one of ${OUTPUT_FORMATS.join(", ")}`,
    );
  }
  if (flags["first-layer"] !== undefined && v !== "trtllm") {
    throw new UsageError("--first-layer applies to --output-format trtllm only");
  }
  integerFlag(flags, "first-layer", 0, 0);
  return v;
}

/**
 * Renders a placement as `--output-format` asks, and warns on stderr about what the target engine
 * would quietly lose: vllm-ascend keeps one local slot per expert and device, so a device that
 * holds an expert twice serves one of those replicas never.
 *
 * @example
 * ```ts
 * renderPlacement(placement, { "output-format": "sglang" }, { numGpus: 8 }, ctx);
 * // '{"physical_to_logical_map": [\n  [...]\n]}\n'
 * ```
 */
export function renderPlacement(
  placement: Placement,
  flags: Flags,
  options: { numGpus?: number; metrics?: unknown },
  ctx: CliContext,
): string {
  const format = outputFormatFlag(flags);
  const firstLayer = integerFlag(flags, "first-layer", 0, 0);
  if (format === "vllm-ascend" && options.numGpus === undefined) {
    throw new UsageError("--output-format vllm-ascend needs --gpus (one device list per GPU)");
  }
  const text = formatPlacement(placement, format, { ...options, firstLayer });
  if (format === "vllm-ascend" && options.numGpus !== undefined) {
    const dup = duplicateGpuCount(placement, options.numGpus);
    if (dup > 0) {
      ctx.stderr(
        `warning: ${dup} (layer, device) pairs hold an expert twice; vllm-ascend maps each ` +
          "expert to one local slot per device, so those extra replicas get no tokens\n",
      );
    }
  }
  return text;
}
