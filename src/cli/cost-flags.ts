// The cost-model flags every pricing command takes (`plan`, `simulate`): explicit numbers, or
// presets by name; explicit flags override what a preset gives.

import type { CostModel } from "../core/cost/model.js";
import { makeCostModel } from "../core/cost/model.js";
import {
  expertBytesOf,
  expertLoadUsOf,
  HARDWARE_PRESETS,
  hardwarePreset,
  MODEL_PRESETS,
  modelPreset,
  tokenUsOf,
} from "../core/cost/presets.js";
import type { Flags } from "./args.js";
import { UsageError } from "./command.js";

/** parseArgs option specs of the cost flags. */
export const COST_OPTIONS = {
  "expert-bytes": { type: "string" },
  model: { type: "string" },
  "link-gbps": { type: "string" },
  hardware: { type: "string" },
  "token-us": { type: "string" },
  "expert-load-us": { type: "string" },
} as const;

/** Help text lines for {@link COST_OPTIONS}. */
export const COST_HELP = `Cost model (docs/cost.md; explicit flags override presets):
  --expert-bytes N
                 bytes of one expert's weights in one layer (what one transfer copies)
  --model NAME   expert bytes (and, with --hardware, --token-us) from a model preset:
                 ${Object.keys(MODEL_PRESETS).join(", ")}
  --link-gbps INTRA,INTER
                 per-GPU bandwidth in Gb/s to a GPU of the same node, of another node
  --hardware NAME
                 links (and, with --model, --token-us) from an 8-GPU node preset with one
                 400 Gb/s NIC per GPU, nominal datasheet figures: ${Object.keys(HARDWARE_PRESETS).join(", ")}
  --token-us T   GPU microseconds per (token, expert) pair: a layer's MoE time in a step is
                 T times the busiest GPU's load
  --expert-load-us T|auto
                 decode: microseconds per distinct activated expert on a GPU in a step;
                 auto = expert bytes over the --hardware's HBM bandwidth [default: 0]`;

/** The cost flags' names, in the order a message names the one given. */
const COST_FLAG_NAMES = Object.keys(COST_OPTIONS);

function positiveNumber(flags: Flags, name: string, allowZero: boolean): number {
  const v = flags[name];
  const n = typeof v === "string" && /^\d*\.?\d+(e[+-]?\d+)?$/i.test(v) ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || (allowZero ? n < 0 : n <= 0)) {
    throw new UsageError(
      `--${name} (${JSON.stringify(v)}) must be a number ${allowZero ? ">= 0" : "> 0"}`,
    );
  }
  return n;
}

function presetFlag<T>(flags: Flags, name: string, find: (preset: string) => T): T | undefined {
  const v = flags[name];
  if (typeof v !== "string") return undefined;
  try {
    return find(v);
  } catch (error) {
    // The library's message names the parameter as `model`: name the flag instead.
    throw new UsageError(`--${(error as Error).message}`);
  }
}

/**
 * Reads the cost flags into a {@link CostModel}. Bytes per expert come from `--expert-bytes` or
 * `--model`, links from `--link-gbps` or `--hardware`, `tokenUs` from `--token-us` or from
 * `--model` with `--hardware` (`tokenUsOf`), `expertLoadUs` from `--expert-load-us` (a number,
 * or `auto`: expert bytes over the hardware's HBM bandwidth; 0 when absent).
 *
 * @param flags parsed flags holding {@link COST_OPTIONS}
 * @param options `requireCompute: false` (for commands that price only transfers) lets `tokenUs`
 *   be 0 when neither `--token-us` nor `--model` with `--hardware` gives it
 * @returns the model, or null when no cost flag is given
 * @throws {UsageError} one line naming what is missing or wrong when some cost flags are given
 * @example
 * ```ts
 * costFlags({ model: "deepseek-v3", hardware: "h800" })?.expertBytes; // 44050944
 * costFlags({ "expert-bytes": "50e6", "link-gbps": "1600,400", "token-us": "0.1" })?.interGbps; // 400
 * costFlags({}); // null
 * costFlags({ model: "deepseek-v3" }); // throws UsageError: --link-gbps or --hardware is needed with --model
 * ```
 */
export function costFlags(
  flags: Flags,
  options: { requireCompute?: boolean } = {},
): CostModel | null {
  const given = COST_FLAG_NAMES.filter((name) => flags[name] !== undefined);
  if (given.length === 0) return null;
  const withFlag = `with --${given[0]}`;
  const model = presetFlag(flags, "model", modelPreset);
  const hardware = presetFlag(flags, "hardware", hardwarePreset);

  let expertBytes: number;
  if (flags["expert-bytes"] !== undefined)
    expertBytes = positiveNumber(flags, "expert-bytes", false);
  else if (model) expertBytes = expertBytesOf(model);
  else throw new UsageError(`--expert-bytes or --model is needed ${withFlag}`);

  let intraGbps: number;
  let interGbps: number;
  if (flags["link-gbps"] !== undefined) {
    const v = flags["link-gbps"];
    const parts = typeof v === "string" ? v.split(",") : [];
    if (parts.length !== 2) {
      throw new UsageError(
        `--link-gbps (${JSON.stringify(v)}) must be INTRA,INTER: two numbers > 0 in Gb/s, e.g. 1600,400`,
      );
    }
    intraGbps = positiveNumber({ "link-gbps": parts[0] }, "link-gbps", false);
    interGbps = positiveNumber({ "link-gbps": parts[1] }, "link-gbps", false);
  } else if (hardware) {
    intraGbps = hardware.intraGbps;
    interGbps = hardware.interGbps;
  } else throw new UsageError(`--link-gbps or --hardware is needed ${withFlag}`);

  let tokenUs = 0;
  if (flags["token-us"] !== undefined) tokenUs = positiveNumber(flags, "token-us", true);
  else if (model && hardware) tokenUs = tokenUsOf(model, hardware);
  else if (options.requireCompute !== false) {
    throw new UsageError(`--token-us, or --model with --hardware, is needed ${withFlag}`);
  }

  let expertLoadUs = 0;
  if (flags["expert-load-us"] === "auto") {
    if (!hardware) {
      throw new UsageError("--expert-load-us auto needs --hardware (its HBM bandwidth)");
    }
    expertLoadUs = expertLoadUsOf(expertBytes, hardware);
  } else if (flags["expert-load-us"] !== undefined) {
    expertLoadUs = positiveNumber(flags, "expert-load-us", true);
  }
  return makeCostModel({ expertBytes, intraGbps, interGbps, tokenUs, expertLoadUs });
}

/**
 * A warning when `--hardware` describes nodes of another size than the topology's (its links
 * are per GPU, so the prices still hold per copy, but a node of the topology is then not a node
 * of the preset, and which copies cross nodes is the topology's say): null when they agree or no
 * preset is named.
 *
 * @param flags parsed flags holding {@link COST_OPTIONS}
 * @param gpusPerNode the topology's GPUs per node (`--gpus / --nodes`)
 * @returns the warning's text, or null
 * @example
 * ```ts
 * hardwareShapeWarning({ hardware: "h800" }, 16);
 * // "--hardware h800 describes nodes of 8 GPUs, but --gpus / --nodes gives 16 per node: copies between GPUs of one topology node are priced at NVLink speed"
 * hardwareShapeWarning({ hardware: "h800" }, 8); // null
 * ```
 */
export function hardwareShapeWarning(flags: Flags, gpusPerNode: number): string | null {
  const hardware = presetFlag(flags, "hardware", hardwarePreset);
  // A shape whose nodes do not divide its GPUs is refused later, by the topology check.
  if (!hardware || hardware.gpusPerNode === gpusPerNode || !Number.isInteger(gpusPerNode)) {
    return null;
  }
  return `--hardware ${hardware.name} describes nodes of ${hardware.gpusPerNode} GPUs, but --gpus / --nodes gives ${gpusPerNode} per node: copies between GPUs of one topology node are priced at NVLink speed`;
}
