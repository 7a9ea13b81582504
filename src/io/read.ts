import { extname } from "node:path";
import { EplbInputError } from "../core/model/errors.js";
import type { LoadMatrix } from "../core/model/matrix.js";
import type { Placement } from "../core/model/placement.js";
import { decodeUtf8, oneLine } from "./bytes.js";
import { readCsv } from "./csv.js";
import { isLongCsv, readLongCsv } from "./csv-long.js";
import { EplbFormatError, readFileBytes as readBytes } from "./errors.js";
import { type Float64Trace, placementFromValue } from "./interpret.js";
import { looksLikeJson, readJson } from "./json.js";
import { classifyValue, loadsFromValue, traceFromValue } from "./load-values.js";
import { isNpy, readNpy } from "./npy.js";
import { type NpyTraceSource, openNpyTrace } from "./npy-stream.js";
import { isNpzArchive, readNpz } from "./npz.js";
import { isSafetensors, readSafetensors } from "./safetensors.js";
import { isLegacyTorch, readTorch } from "./torch.js";
import {
  describeTrtllmStatistics,
  isTrtllmStatisticsDir,
  readTrtllmStatistics,
} from "./trtllm-statistics.js";
import type { FileObject, FileValue } from "./value.js";
import { readYaml } from "./yaml.js";
import { openZip } from "./zip.js";

/** The file formats the readers know. */
export type FileFormat = "pt" | "npy" | "npz" | "safetensors" | "json" | "csv" | "yaml";

/** All {@link FileFormat} names, for CLI validation and help text. */
export const FILE_FORMATS: readonly FileFormat[] = [
  "pt",
  "npy",
  "npz",
  "safetensors",
  "json",
  "csv",
  "yaml",
];

/** Options every reader takes. */
export interface ReadOptions {
  /** Force a format instead of detecting it from the magic bytes, then the extension. */
  readonly format?: FileFormat;
  /** Which dict entry (or safetensors tensor) to read, instead of the well-known names. */
  readonly key?: string;
}

/** Options of {@link readLoads} and {@link readTrace}. */
export interface ReadLoadsOptions extends ReadOptions {
  /** A python-like slice over the steps axis of 3-D data: `"a:b"`, `"-100:"`, `":50"`, `"a:b:c"`. */
  readonly steps?: string;
  /**
   * Path of a placement file: the loads are per physical slot (vLLM's `expert_load_window`,
   * `[window?, layers, slots]`) and are folded into logical experts by summing the slots that
   * hold the same expert in this placement.
   */
  readonly slotPlacement?: string;
  /**
   * Receives what the reader wants the user to know: a warning (the sums are right but
   * something looks off, e.g. a rank missing records) or a description of what was read (a
   * TensorRT-LLM statistics folder: ranks, iterations, layers). Ignored when absent.
   */
  readonly onNote?: (note: LoadsNote) => void;
}

/** A remark of a loads reader for the user (see {@link ReadLoadsOptions.onNote}). */
export interface LoadsNote {
  readonly level: "info" | "warning";
  /** One line, no trailing newline. */
  readonly text: string;
  /** The model layer index of each row, when the file says (TensorRT-LLM statistics). */
  readonly layerIds?: readonly number[];
}

/** Options of {@link readPlacement}. */
export interface ReadPlacementOptions extends ReadOptions {
  /** Number of logical experts; defaults to the largest expert id in the file + 1. */
  readonly numExperts?: number;
  /** Told what the user must know about the file (a vllm-ascend device listing an expert twice). */
  readonly onNote?: (note: LoadsNote) => void;
  /**
   * The placement is to fold counts per physical slot (`--slot-placement`): a TensorRT-LLM config
   * whose slots moved while serving (`layer_updates_per_iter` > 0) is then refused.
   */
  readonly slotCounts?: boolean;
}

const EXTENSIONS: Readonly<Record<string, FileFormat>> = {
  ".pt": "pt",
  ".pth": "pt",
  ".bin": "pt",
  ".npy": "npy",
  ".npz": "npz",
  ".safetensors": "safetensors",
  ".json": "json",
  ".csv": "csv",
  ".yaml": "yaml",
  ".yml": "yaml",
};

/**
 * Decides a file's format: magic bytes first (`PK\x03\x04` a torch zip, or `.npz` when every
 * entry is `.npy`; the pickled magic number of legacy torch files; `\x93NUMPY`, a safetensors
 * header, `[`/`{` JSON), then the extension, then a look at the text (`key:` lines
 * are YAML, anything else CSV).
 *
 * @example
 * ```ts
 * detectFormat(readFileSync("hotness.npy"), "hotness.npy"); // "npy"
 * ```
 */
export function detectFormat(bytes: Uint8Array, fileName: string): FileFormat {
  if (bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 0x03 && bytes[3] === 0x04) {
    return isNpzBytes(bytes, fileName) ? "npz" : "pt";
  }
  if (isLegacyTorch(bytes)) return "pt";
  if (isNpy(bytes)) return "npy";
  if (isSafetensors(bytes)) return "safetensors";
  if (looksLikeJson(bytes)) return "json";
  const ext = extname(fileName).toLowerCase();
  const byExtension = Object.hasOwn(EXTENSIONS, ext) ? EXTENSIONS[ext] : undefined;
  if (byExtension) return byExtension;
  const head = decodeUtf8(bytes.subarray(0, 4096), fileName);
  if (/^\s*[A-Za-z_][\w-]*\s*:(\s|$)/m.test(head)) return "yaml";
  return "csv";
}

/** A ZIP whose entries are all `.npy` files; a broken archive is left to the torch reader's message. */
function isNpzBytes(bytes: Uint8Array, fileName: string): boolean {
  try {
    return isNpzArchive(openZip(bytes, fileName));
  } catch {
    return extname(fileName).toLowerCase() === ".npz";
  }
}

/**
 * Parses bytes in a known or detected format into plain values (see {@link FileValue}): a
 * `.pt` file's pickled object, an `.npy` tensor, an `.npz` archive's arrays (see
 * {@link readNpz}), a safetensors file's tensors as a dict, JSON and YAML documents, a CSV as a
 * 2-D tensor (SGLang's long `layer_id,expert_id,count` CSV as `{layer_ids, counts}`). Every
 * problem is an {@link EplbFormatError}.
 *
 * @example
 * ```ts
 * parseBytes(new TextEncoder().encode("1,2\n3,4"), { fileName: "l.csv" }).value;
 * // { dtype: "float64", shape: [2, 2], data: Float64Array [1, 2, 3, 4] }
 * ```
 */
export function parseBytes(
  bytes: Uint8Array,
  options: ReadOptions & { readonly fileName?: string } = {},
): { format: FileFormat; value: FileValue } {
  const file = options.fileName ?? "<input>";
  const format = options.format ?? detectFormat(bytes, file);
  try {
    switch (format) {
      case "pt":
        return { format, value: readTorch(bytes, file) };
      case "npy":
        return { format, value: readNpy(bytes, file) };
      case "npz":
        return { format, value: readNpz(bytes, file, options.key) };
      case "safetensors": {
        const tensors = readSafetensors(bytes, file, options.key);
        const value: FileObject = {};
        for (const [name, t] of tensors) {
          Object.defineProperty(value, name, {
            value: t,
            enumerable: true,
            writable: true,
            configurable: true,
          });
        }
        return { format, value };
      }
      case "json":
        return { format, value: readJson(bytes, file) };
      case "csv":
        // SGLang's older dump is long (one row per layer, expert pair), not a matrix.
        if (isLongCsv(bytes)) return { format, value: readLongCsv(bytes, file) };
        return { format, value: readCsv(bytes, file) };
      case "yaml":
        return { format, value: readYaml(bytes, file) };
      default:
        throw new EplbFormatError(file, `unknown format ${String(format)}`);
    }
  } catch (error) {
    throw asFormatError(error, file);
  }
}

/**
 * Reads a file into plain values, detecting its format (see {@link parseBytes}).
 *
 * @example
 * ```ts
 * const dump = readValue("expert_distribution_recorder.pt").value as FileObject;
 * dump.rank; // 0
 * ```
 */
export function readValue(
  path: string,
  options: ReadOptions = {},
): { format: FileFormat; value: FileValue } {
  return parseBytes(readBytes(path), { ...options, fileName: path });
}

/**
 * Reads what a file holds, whatever it is: a placement (`physical_to_logical_map`, `phy2log`,
 * vllm-ascend or TensorRT-LLM layouts), loads (a 2-D array) or a trace (a 3-D array). For
 * commands such as `eplb convert` that accept any of them.
 *
 * @example
 * ```ts
 * const content = readTensorFile("sglang-init-p2l.pt");
 * if (content.kind === "placement") console.log(content.placement.numReplicas); // 20
 * ```
 */
export function readTensorFile(
  path: string,
  options: ReadOptions = {},
):
  | { kind: "placement"; format: FileFormat; placement: Placement }
  | { kind: "loads"; format: FileFormat; loads: LoadMatrix }
  | { kind: "trace"; format: FileFormat; trace: Float64Trace } {
  const bytes = readBytes(path);
  const { format, value } = parseBytes(bytes, { ...options, fileName: path });
  const content = guard(path, () =>
    classifyValue(value, path, { key: options.key, limit: bytes.length }),
  );
  return { ...content, format };
}

/**
 * Reads expert loads `[layers, experts]` from any supported file: a 2-D array, or a 3-D trace
 * `[steps, layers, experts]` summed over its steps (or over the `steps` slice; a C-order `.npy`
 * trace is read one step at a time, so only the slice is read and the file is never held). Finds
 * the array in dicts by `key` or the usual names (`logical_count` of SGLang dumps and init files,
 * `weight`, `loads`, `hotness`, `counts`). With `slotPlacement` the file counts per physical slot
 * (vLLM) and is folded into logical experts; a vLLM `expert_load_window` saved beside its
 * `physical_to_logical_map` is folded by that map. A directory holding `meta_info.json` is a
 * TensorRT-LLM expert statistics folder: every rank and iteration summed (`steps` slices the
 * iterations), layers in model order. SGLang recorder dumps are read as SGLang means them (see
 * `src/io/sglang.ts`): a stat dump's ring buffer summed whole (`steps` refused), per_pass /
 * per_token records folded through their own map; the older CSV by (layer_id, expert_id).
 * Several files (one per rank) and folders: `readLoadSources`.
 *
 * @example
 * ```ts
 * const loads = readLoads("hotness.npy", { steps: "-100:" });
 * // { layers: 4, experts: 16, data: Float64Array(64) }
 * ```
 */
export function readLoads(path: string, options: ReadLoadsOptions = {}): LoadMatrix {
  const folder = statisticsFolder(path, options, true);
  if (folder) return { layers: folder.layers, experts: folder.experts, data: folder.data };
  const streamed = guard(path, () => streamedLoads(path, options));
  if (streamed) return streamed;
  const slots = slotMap(options);
  const bytes = readBytes(path);
  const { value } = parseBytes(bytes, { ...options, fileName: path });
  return guard(path, () =>
    loadsFromValue(value, path, {
      key: options.key,
      limit: bytes.length,
      steps: options.steps,
      slots,
      onFold: (text) => options.onNote?.({ level: "info", text }),
      onWarning: (text) => options.onNote?.({ level: "warning", text }),
    }),
  );
}

/**
 * The trace of a file opened for reading one step at a time, when these read options allow it:
 * a C-order 3-D `.npy` file, no `key` (a `.npy` holds one array) and no `slotPlacement` (folding
 * needs the whole file), `format` absent or `npy` (a statistics folder is not streamed). Null when the file must be read whole with
 * {@link readTrace}. The caller closes it.
 *
 * @example
 * ```ts
 * const source = openTraceStream("trace.npy", { steps: "-2000:" }); // NpyTraceSource | null
 * ```
 */
export function openTraceStream(
  path: string,
  options: ReadLoadsOptions = {},
): NpyTraceSource | null {
  if (options.format !== undefined && options.format !== "npy") return null;
  if (options.key !== undefined || options.slotPlacement !== undefined) return null;
  if (isTrtllmStatisticsDir(path)) return null;
  return guard(path, () => openNpyTrace(path, { steps: options.steps }));
}

/**
 * A streamable trace ({@link openTraceStream}) summed over its selected steps one step at a time
 * (so a long trace is never held whole), or null when the file must be read whole.
 */
function streamedLoads(path: string, options: ReadLoadsOptions): LoadMatrix | null {
  const source = openTraceStream(path, options);
  if (!source) return null;
  try {
    const n = source.layers * source.experts;
    const step = new Float64Array(n);
    const data = new Float64Array(n);
    for (let t = 0; t < source.steps; t++) {
      source.readStep(t, step, 0);
      for (let i = 0; i < n; i++) data[i] += step[i];
    }
    return { layers: source.layers, experts: source.experts, data };
  } finally {
    source.close();
  }
}

/**
 * Reads a load trace `[steps, layers, experts]` (row-major in `data`); a 2-D file is a trace of
 * one step. Same lookup, `steps` slice and `slotPlacement` folding as {@link readLoads}.
 *
 * @example
 * ```ts
 * const trace = readTrace("hotness.npy");
 * // { steps: 16, layers: 4, experts: 16, data: Float64Array(1024) }
 * ```
 */
export function readTrace(path: string, options: ReadLoadsOptions = {}): Float64Trace {
  const folder = statisticsFolder(path, options, false);
  if (folder) return folder;
  const slots = slotMap(options);
  const bytes = readBytes(path);
  const { value } = parseBytes(bytes, { ...options, fileName: path });
  return guard(path, () =>
    traceFromValue(value, path, {
      key: options.key,
      limit: bytes.length,
      steps: options.steps,
      slots,
      onWarning: (text) => options.onNote?.({ level: "warning", text }),
    }),
  );
}

/**
 * Reads a placement: `physical_to_logical_map` or `phy2log` `[layers, slots]` (JSON, `.pt`,
 * `.npy`, safetensors, CSV), a vllm-ascend expert map JSON, or a TensorRT-LLM load balancer YAML.
 *
 * @example
 * ```ts
 * const p = readPlacement("sglang-init-p2l.pt");
 * // { layers: 4, numReplicas: 20, numExperts: 16, phy2log: Int32Array(80), ... }
 * ```
 */
export function readPlacement(path: string, options: ReadPlacementOptions = {}): Placement {
  const bytes = readBytes(path);
  const { value } = parseBytes(bytes, { ...options, fileName: path });
  return guard(path, () =>
    placementFromValue(value, path, {
      key: options.key,
      limit: bytes.length,
      numExperts: options.numExperts,
      slotCounts: options.slotCounts,
      onWarning: (text) => options.onNote?.({ level: "warning", text: `${path}: ${text}` }),
    }),
  );
}

/**
 * A TensorRT-LLM expert statistics folder (a directory with `meta_info.json`) read as a trace
 * over its iterations (summed when `sum`), its description and warnings passed to
 * `options.onNote`; null when `path` is not such a folder.
 */
function statisticsFolder(
  path: string,
  options: ReadLoadsOptions,
  sum: boolean,
): Float64Trace | null {
  if (!isTrtllmStatisticsDir(path)) return null;
  if (options.key !== undefined) {
    throw new EplbFormatError(path, "--key does not apply to a TensorRT-LLM statistics folder");
  }
  const slots = slotMap(options);
  const { trace, info } = readTrtllmStatistics(path, { steps: options.steps, slots, sum });
  options.onNote?.({
    level: "info",
    text: describeTrtllmStatistics(info),
    layerIds: info.layerIds,
  });
  for (const text of info.warnings)
    options.onNote?.({ level: "warning", text: `${path}: ${text}` });
  return trace;
}

/** The `slotPlacement` map that folds per-slot counts into experts, read as such (see `slotCounts`). */
function slotMap(options: ReadLoadsOptions): Placement | undefined {
  return options.slotPlacement
    ? readPlacement(options.slotPlacement, { slotCounts: true })
    : undefined;
}

function guard<T>(file: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw asFormatError(error, file);
  }
}

/**
 * Last line of defence for the contract "every broken input is an EplbFormatError": whatever
 * else escapes a reader (an engine error such as a string too long, a failed allocation, a
 * stack overflow, zlib's, or a bug of ours that only this file reaches) becomes one, named and
 * on one line. Errors meant for the caller (EplbFormatError, EplbInputError for bad options such
 * as a `steps` slice) pass through.
 *
 * @param error what the reader threw
 * @param file the file being read, for the message
 * @example
 * ```ts
 * asFormatError(new RangeError("Array buffer allocation failed"), "x.pt").message;
 * // "x.pt: cannot be read: Array buffer allocation failed"
 * ```
 */
export function asFormatError(error: unknown, file: string): Error {
  if (error instanceof EplbFormatError || error instanceof EplbInputError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new EplbFormatError(file, `cannot be read: ${oneLine(message)}`);
}
