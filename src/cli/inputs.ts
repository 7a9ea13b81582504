import { isAbsolute, resolve } from "node:path";
import type { LoadMatrix } from "../core/model/matrix.js";
import type { Placement } from "../core/model/placement.js";
import { EplbFormatError, readFileBytes } from "../io/errors.js";
import { statedGpuCount } from "../io/interpret.js";
import {
  FILE_FORMATS,
  type FileFormat,
  type ReadLoadsOptions,
  readLoads,
  readPlacement,
  readValue,
} from "../io/read.js";
import { type LoadSource, readLoadSources } from "../io/sources.js";
import type { Flags } from "./args.js";
import { type CliContext, UsageError } from "./command.js";

/** The `--format`, `--steps`, `--key` and `--slot-placement` flags of commands that read loads. */
export const LOADS_INPUT_OPTIONS = {
  format: { type: "string" },
  steps: { type: "string" },
  key: { type: "string" },
  "slot-placement": { type: "string" },
} as const;

/** The `--loads` flag: repeatable, one file per rank (summed). */
export const LOADS_OPTION = { loads: { type: "string", multiple: true } } as const;

/** Help text lines for {@link LOADS_OPTION}, shared by plan, eval and report. */
export const LOADS_HELP = `  --loads FILE|DIR
                 loads per (layer, expert): JSON (2-D array, {"weight"},
                 {"logical_count"}), CSV, .npy, .npz, safetensors, torch .pt (vLLM
                 expert_load_window with its physical_to_logical_map, legacy non-zip
                 files), a TensorRT-LLM expert statistics folder (meta_info.json +
                 rank*.safetensors), and SGLang's recorder dumps: stat / stat_approx
                 ({rank, logical_count int32 [buffer, layers, experts]}, a ring buffer:
                 all rows summed), per_pass / per_token (one file per rank: records of
                 physical counts, folded onto experts through last_physical_to_logical_map)
                 and the older CSV layer_id,expert_id,count. Repeat --loads (one file per
                 rank) or give a folder of expert_distribution_* dumps: the files are
                 summed and counted in the summary.`;

/** Help text lines for {@link LOADS_INPUT_OPTIONS}. */
export const LOADS_INPUT_HELP = `  --format F     force the loads file's format: ${FILE_FORMATS.join(", ")}
                 [default: detected from magic bytes, then the extension]
  --steps a:b    with a 3-D trace [steps, layers, experts] (hotness .npy, JSON, TensorRT-LLM
                 statistics iterations in order) or SGLang per_pass / per_token dumps (forward
                 passes in id order, over all ranks): sum only these steps, a Python slice
                 ("-100:", "0:50", "10:20:2") [default: all]; refused on SGLang stat dumps,
                 whose ring buffer rows are not in time order
  --key NAME     the dict entry, safetensors tensor or .npz array holding the loads
                 [default: logical_count, weight, loads, hotness, counts, expert_load_window]
  --slot-placement FILE
                 the loads count per physical slot (vLLM's expert_load_window [window,
                 layers, slots], TensorRT-LLM statistics recorded with its load balancer on):
                 fold them into experts with this placement (the physical_to_logical_map they
                 were recorded under); not needed when the file holds that map itself`;

/**
 * Where a command-line path points: relative paths resolve against the command's cwd.
 *
 * @example
 * ```ts
 * located("/data/a.npy", "/tmp"); // "/data/a.npy"
 * ```
 */
export function located(path: string, cwd: string): string {
  return isAbsolute(path) || resolve(cwd) === process.cwd() ? path : resolve(cwd, path);
}

/**
 * Lets `--steps -100:` through: `parseArgs` takes a value starting with `-` for a flag and
 * refuses it, so a slice with a negative start is glued to its flag (`--steps=-100:`) first.
 *
 * @example
 * ```ts
 * joinStepsValue(["--steps", "-100:", "--gpus", "8"]); // ["--steps=-100:", "--gpus", "8"]
 * ```
 */
export function joinStepsValue(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i] === "--steps" && next !== undefined && /^-\d*(:-?\d*){0,2}$/.test(next)) {
      out.push(`--steps=${next}`);
      i++;
    } else {
      out.push(argv[i]);
    }
  }
  return out;
}

/**
 * The value of a `--format`-like flag, checked against the readers' formats.
 *
 * @example
 * ```ts
 * fileFormatFlag({ format: "npy" }, "format"); // "npy"
 * fileFormatFlag({ format: "xls" }, "format");
 * // throws UsageError: --format ("xls") must be one of pt, npy, npz, safetensors, json, csv, yaml
 * ```
 */
export function fileFormatFlag(flags: Flags, name: string): FileFormat | undefined {
  const v = flags[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !(FILE_FORMATS as readonly string[]).includes(v)) {
    throw new UsageError(
      `--${name} (${JSON.stringify(v)}) must be one of ${FILE_FORMATS.join(", ")}`,
    );
  }
  return v as FileFormat;
}

/**
 * Reads a loads file for a command with the format readers of `src/io` (torch `.pt`, `.npy`,
 * safetensors, JSON, CSV, YAML; 3-D traces summed over `steps`). Broken files throw
 * `EplbFormatError`, which the CLI prints in one line.
 *
 * @example
 * ```ts
 * readLoadsFile("examples/loads.json", process.cwd()); // { layers: 2, experts: 12, data: ... }
 * readLoadsFile("hotness.npy", process.cwd(), { steps: "-100:" }); // the last 100 steps summed
 * ```
 */
export function readLoadsFile(
  path: string,
  cwd: string,
  options: ReadLoadsOptions = {},
): LoadMatrix {
  const slots = options.slotPlacement;
  if (slots === undefined)
    return unreadableAsUsage(path, () => readLoads(located(path, cwd), options));
  // Checked on its own first, so that a missing placement is not reported as the loads file.
  unreadableAsUsage(slots, () => readFileBytes(located(slots, cwd)));
  const resolved = { ...options, slotPlacement: located(slots, cwd) };
  return unreadableAsUsage(path, () => readLoads(located(path, cwd), resolved));
}

/**
 * The paths of a repeatable file flag (`--loads`, see {@link LOADS_OPTION}, or simulate's
 * `--trace`); at least one is required.
 *
 * @param flags parsed flags
 * @param name the flag [default: loads]
 * @returns the paths in command-line order
 * @throws UsageError when the flag is missing or empty
 * @example
 * ```ts
 * loadsPaths({ loads: ["dump_0.pt", "dump_1.pt"] }); // ["dump_0.pt", "dump_1.pt"]
 * ```
 */
export function loadsPaths(flags: Flags, name = "loads"): string[] {
  const v = flags[name];
  const paths = typeof v === "string" ? [v] : Array.isArray(v) ? v : [];
  if (paths.length === 0 || paths.some((p) => p === ""))
    throw new UsageError(`--${name} is required`);
  return paths;
}

/**
 * Reads and sums the `--loads` files and folders of a command (see `readLoadSources`); what the
 * user must know (all-zero loads, a dump without passes, folds) goes to `options.onNote`.
 *
 * @param paths the --loads values
 * @param cwd the command's working directory
 * @param options the reader options from {@link loadsInputFlags}, with `onNote`
 * @returns the summed loads and their description
 * @throws UsageError for a path that cannot be opened; EplbFormatError for broken contents
 * @example
 * ```ts
 * readLoadsInput(["dump_0.pt", "dump_1.pt"], process.cwd(), { onNote: warnOnStderr(ctx.stderr) }).files; // 2
 * ```
 */
export function readLoadsInput(
  paths: readonly string[],
  cwd: string,
  options: ReadLoadsOptions,
): LoadSource {
  const slots = options.slotPlacement;
  // Checked on its own first, so that a missing placement is not reported as a loads file.
  if (slots !== undefined) unreadableAsUsage(slots, () => readFileBytes(located(slots, cwd)));
  const resolved =
    slots === undefined ? options : { ...options, slotPlacement: located(slots, cwd) };
  return unreadableAsUsage(paths.join(", "), () =>
    readLoadSources(
      paths.map((p) => located(p, cwd)),
      resolved,
    ),
  );
}

/**
 * A file that cannot be opened at all is reported as `cannot read PATH: reason`, the message
 * every command has printed since the first release; broken contents keep the readers' message.
 *
 * @param path the path as the user gave it (or several joined by ", ")
 * @param run the read
 * @returns what `run` returns
 * @throws UsageError for a file that cannot be opened; what `run` throws otherwise
 * @example
 * ```ts
 * unreadableAsUsage("nope.json", () => readLoads("nope.json"));
 * // throws UsageError: cannot read nope.json: no such file
 * ```
 */
export function unreadableAsUsage<T>(path: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    if (
      error instanceof EplbFormatError &&
      /^(no such file|is a directory|permission denied|cannot read \()/.test(error.problem)
    ) {
      throw new UsageError(
        `cannot read ${path.includes(", ") ? error.file : path}: ${error.problem}`,
      );
    }
    throw error;
  }
}

/**
 * The reader options from the `--format`, `--steps`, `--key` and `--slot-placement` flags (see
 * {@link LOADS_INPUT_OPTIONS}); the slot placement path is resolved by {@link readLoadsFile}.
 *
 * @example
 * ```ts
 * loadsInputFlags({ format: "pt", steps: "-10:" }); // { format: "pt", steps: "-10:", ... }
 * ```
 */
export function loadsInputFlags(flags: Flags): ReadLoadsOptions {
  const steps = flags.steps;
  if (steps !== undefined && (typeof steps !== "string" || steps.trim() === "")) {
    throw new UsageError('--steps must be a slice such as "0:100" or "-50:"');
  }
  for (const name of ["key", "slot-placement"]) {
    const v = flags[name];
    if (v !== undefined && (typeof v !== "string" || v === "")) {
      throw new UsageError(`--${name} needs a value`);
    }
  }
  return {
    format: fileFormatFlag(flags, "format"),
    steps: steps as string | undefined,
    key: flags.key as string | undefined,
    slotPlacement: flags["slot-placement"] as string | undefined,
  };
}

/**
 * A loads reader's `onNote` for commands without a summary: warnings go to stderr as
 * `warning: ...` lines, descriptions are dropped.
 *
 * @param stderr where the lines go (the command's `ctx.stderr`)
 * @example
 * ```ts
 * writeFileSync("zeros.json", "[[0, 0, 0, 0]]");
 * const flags = { steps: undefined };
 * readLoadsInput(["zeros.json"], ctx.cwd, { ...loadsInputFlags(flags), onNote: warnOnStderr(ctx.stderr) });
 * ctx.out; // ["warning: zeros.json: the loads are all zero (nothing was recorded); ..."]
 * ```
 */
export function warnOnStderr(stderr: (text: string) => void): ReadLoadsOptions["onNote"] {
  return (note) => {
    if (note.level === "warning") stderr(`warning: ${note.text}\n`);
  };
}

/**
 * Reads a placement file for a command (any layout `readPlacement` knows: `phy2log`,
 * `physical_to_logical_map` in JSON or `.pt`, vllm-ascend expert maps, TensorRT-LLM YAML);
 * what the user must know about it (a vllm-ascend device listing an expert twice, which the
 * engine does not serve as written) is a `warning:` line on the command's stderr.
 *
 * @example
 * ```ts
 * readPlacementFile("init.json", ctx, { numExperts: 256 }).numReplicas; // 288
 * ```
 */
export function readPlacementFile(
  path: string,
  ctx: Pick<CliContext, "cwd" | "stderr">,
  options: { format?: FileFormat; numExperts?: number } = {},
): Placement {
  return unreadableAsUsage(path, () =>
    readPlacement(located(path, ctx.cwd), { ...options, onNote: warnOnStderr(ctx.stderr) }),
  );
}

/**
 * The GPU count a placement file states itself, if any: vllm-ascend expert maps list one device
 * per GPU (the other layouts do not record it).
 *
 * @example
 * ```ts
 * placementFileGpus("expert_map.json", process.cwd()); // 8
 * placementFileGpus("init.json", process.cwd()); // undefined
 * ```
 */
export function placementFileGpus(
  path: string,
  cwd: string,
  format?: FileFormat,
): number | undefined {
  if (format !== undefined && format !== "json") return undefined;
  const { value } = unreadableAsUsage(path, () => readValue(located(path, cwd), { format }));
  return statedGpuCount(value);
}
