import type { Placement } from "../core/model/placement.js";
import {
  formatPlacement,
  isOutputFormat,
  OUTPUT_FORMATS,
  type OutputFormat,
  sglangPlacementTorch,
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
                   sglang       {"physical_to_logical_map": [layers, slots]} for SGLang's
                                --init-expert-location: JSON, or a torch file when --out
                                ends in .pt (SGLang torch.loads .pt, reads .json, and
                                parses any other value as inline JSON)
                   vllm         JSON physical_to_logical_map, logical_to_physical_map,
                                logical_replica_count (vLLM's EPLB state names)
                   vllm-ascend  expert map JSON for expert_map_path (moe_layer_count,
                                layer_list / device_list / device_expert, by position);
                                needs --gpus; no GPU may hold an expert twice (eplb plan
                                keeps them distinct, convert refuses such a placement)
                   trtllm       MoE load balancer YAML for moe_config.load_balancer
                                (num_slots, initial_global_assignments by model layer)
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
  const out = flags.out;
  if (typeof out === "string" && out.endsWith(".pt") && v !== "sglang") {
    throw new UsageError(
      `--out ${out}: only --output-format sglang writes a torch .pt file (${v} is ${v === "trtllm" ? "YAML" : "JSON"})`,
    );
  }
  return v;
}

/**
 * Renders a placement as `--output-format` asks: text, or for `sglang` with an `--out` path
 * ending in `.pt` the bytes of a torch file (SGLang `torch.load`s such a path). Warns on stderr
 * when the `--out` name is not one the engine reads as a file: SGLang parses an
 * `--init-expert-location` value ending in neither `.pt` nor `.json` as inline JSON, and
 * vllm-ascend rejects an `expert_map_path` not ending in `.json`.
 *
 * @param placement the placement to write
 * @param flags the command's flags (`output-format`, `first-layer`, `out`)
 * @param options the GPU count (required by vllm-ascend) and `eplb plan`'s metrics
 * @param ctx where warnings go
 * @returns the file's content
 * @throws UsageError when vllm-ascend has no GPU count; EplbInputError when the writer refuses
 *   the placement (e.g. a device holding an expert twice, for vllm-ascend)
 * @example
 * ```ts
 * const { placement } = rebalanceExperts([[10, 40, 20, 30]], 8, 1, 1, 8);
 * renderPlacement(placement, { "output-format": "sglang" }, { numGpus: 8 }, ctx);
 * // '{"physical_to_logical_map": [\n  [...]\n]}\n'
 * renderPlacement(placement, { "output-format": "sglang", out: "init.pt" }, {}, ctx);
 * // Uint8Array (a torch zip archive)
 * ```
 */
export function renderPlacement(
  placement: Placement,
  flags: Flags,
  options: { numGpus?: number; metrics?: unknown },
  ctx: CliContext,
): string | Uint8Array {
  const format = outputFormatFlag(flags);
  const firstLayer = integerFlag(flags, "first-layer", 0, 0);
  if (format === "vllm-ascend" && options.numGpus === undefined) {
    throw new UsageError("--output-format vllm-ascend needs --gpus (one device list per GPU)");
  }
  const out = typeof flags.out === "string" ? flags.out : undefined;
  if (format === "sglang" && out !== undefined) {
    if (out.endsWith(".pt")) return sglangPlacementTorch(placement, options.numGpus);
    if (!out.endsWith(".json")) {
      ctx.stderr(
        `warning: --out ${out} ends in neither .json nor .pt: SGLang reads --init-expert-location ` +
          "as a file only with those endings and parses any other value as inline JSON\n",
      );
    }
  }
  if (format === "vllm-ascend" && out !== undefined && !out.endsWith(".json")) {
    ctx.stderr(
      `warning: --out ${out} does not end in .json: vllm-ascend refuses an expert_map_path ` +
        "without that ending\n",
    );
  }
  return formatPlacement(placement, format, { ...options, firstLayer });
}
