import type { Placement } from "../core/model/placement.js";
import { type Flags, integerFlag, parseFlags, requireString } from "./args.js";
import { type CliCommand, type CliContext, UsageError } from "./command.js";
import { fileFormatFlag, placementFileGpus, readPlacementFile } from "./inputs.js";
import { checkOutputPaths, writeResult } from "./output.js";
import {
  outputFormatFlag,
  PLACEMENT_OUTPUT_HELP,
  PLACEMENT_OUTPUT_OPTIONS,
  renderPlacement,
} from "./placement-output.js";

/** The GPU count for writing: `--gpus` when given, else what the input file states. */
function gpusForConvert(
  flags: Flags,
  placement: Placement,
  path: string,
  ctx: CliContext,
): number | undefined {
  if (flags.gpus !== undefined) return integerFlag(flags, "gpus", 1);
  const stated = placementFileGpus(path, ctx.cwd, fileFormatFlag(flags, "format"));
  // A count that does not split the slots evenly is not a layout we can write; say nothing.
  return stated !== undefined && placement.numReplicas % stated === 0 ? stated : undefined;
}

export const convertCommand: CliCommand = {
  name: "convert",
  summary: "turn a placement file into the file an engine loads (sglang, vllm, trtllm...)",
  help: `Usage: eplb convert --placement FILE --output-format NAME [--format F] [--gpus N]
                    [--experts N] [--first-layer N] [--out FILE]

Reads a placement in any layout eplb knows and writes it for another consumer:
phy2log / physical_to_logical_map (JSON, torch .pt, .npy, CSV), vllm-ascend expert maps,
TensorRT-LLM load balancer YAML, eplb plan output. The slots and their experts are kept
exactly; only the file layout changes. A one-line summary goes to stderr.

Options:
  --placement FILE
                 the placement to convert
${PLACEMENT_OUTPUT_HELP}
  --format F     force the input's format: pt, npy, safetensors, json, csv, yaml
                 [default: detected]
  --gpus N       GPUs (EP ranks) the slots are spread over, GPU-major; required by
                 vllm-ascend unless the input states it (a vllm-ascend expert map does);
                 checked to divide the slots otherwise
  --experts N    logical experts [default: the largest expert id + 1]
  --out FILE     write there instead of stdout (sglang: a name ending in .pt writes a
                 torch file)
  -h, --help     this help

A placement with an expert twice on one GPU is refused for vllm-ascend (that engine would
route tokens to the wrong experts): plan it with eplb plan --output-format vllm-ascend.

Examples:
  eplb convert --placement init.pt --output-format trtllm --gpus 4 --first-layer 3 --out lb.yaml
  eplb convert --placement init.json --output-format sglang --out init.pt
  eplb convert --placement expert_map.json --output-format sglang --out init.json
`,
  async run(argv: string[], ctx: CliContext): Promise<void> {
    const flags = parseFlags("convert", argv, {
      placement: { type: "string" },
      format: { type: "string" },
      gpus: { type: "string" },
      experts: { type: "string" },
      out: { type: "string" },
      ...PLACEMENT_OUTPUT_OPTIONS,
    });
    const path = requireString(flags, "placement");
    checkOutputPaths(flags, ctx);
    if (flags["output-format"] === undefined) throw new UsageError("--output-format is required");
    const format = outputFormatFlag(flags);
    const inputFormat = fileFormatFlag(flags, "format");
    if (flags.gpus !== undefined) integerFlag(flags, "gpus", 1);
    const numExperts = flags.experts === undefined ? undefined : integerFlag(flags, "experts", 1);
    const placement = readPlacementFile(path, ctx, { format: inputFormat, numExperts });
    const numGpus = gpusForConvert(flags, placement, path, ctx);
    const text = renderPlacement(placement, flags, { numGpus }, ctx);
    writeResult(text, flags.out as string | undefined, ctx);
    ctx.stderr(
      `eplb convert: ${placement.layers} layers, ${placement.numReplicas} slots, ` +
        `${placement.numExperts} experts${numGpus === undefined ? "" : ` on ${numGpus} GPUs`} -> ${format}\n`,
    );
  },
};
