/**
 * Loads from one or more files and folders, as the engines write them: SGLang writes one dump
 * per rank (per_pass / per_token modes, the older CSV), so the files of one recording are summed;
 * a folder is expanded to its SGLang dumps, or (with `meta_info.json`) is a TensorRT-LLM
 * expert-statistic folder handed whole to {@link readLoads}.
 */
import { closeSync, existsSync, openSync, readdirSync, readSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import type { LoadMatrix } from "../core/model/matrix.js";
import { isLongCsv } from "./csv-long.js";
import { requireDistinctFiles } from "./distinct-files.js";
import { EplbFormatError, fileReadError, readFileBytes } from "./errors.js";
import { type Float64Trace, selectSteps } from "./interpret.js";
import { loadsFromValue } from "./load-values.js";
import {
  detectFormat,
  type FileFormat,
  parseBytes,
  type ReadLoadsOptions,
  readLoads,
} from "./read.js";
import { readSglangPassDump, SglangPassSum, sglangDumpKind } from "./sglang.js";
import { isTensor } from "./tensor.js";
import { isFileObject } from "./value.js";

/** Loads read from files, with what they were: for summaries, warnings and per-pass figures. */
export interface LoadSource {
  /** The loads `[layers, experts]`, summed over every file (and the selected steps). */
  readonly loads: LoadMatrix;
  /** Number of files read (a TensorRT-LLM folder counts as one). */
  readonly files: number;
  /** What the files are, e.g. `["SGLang per_pass dump"]`, one entry per distinct kind. */
  readonly kinds: string[];
  /**
   * When every file is an SGLang per_pass / per_token dump: logical loads per forward pass
   * (records of one pass summed over ranks, passes in id order, after `steps`).
   */
  readonly passes?: Float64Trace;
  /** The forward pass id of each step of {@link passes}. */
  readonly passIds?: number[];
  /**
   * With {@link passes}, when every dump was recorded under one map: the physical counts per
   * pass `[passes][layers][slots]` (ranks summed) and that map, as SGLang's recorder saw them.
   */
  readonly recorded?: { slots: number; map: Int32Array; physical: Float64Array };
  /** The ranks whose records were read (SGLang per_pass / per_token dumps). */
  readonly ranks?: number[];
  /**
   * One SGLang stat dump's `average_utilization_rate_over_window`: the balancedness SGLang
   * logged, averaged over its last 1000 passes (only with `--enable-expert-distribution-metrics`).
   */
  readonly loggedBalancedness?: number;
  /** Model layer id of each row, when the files say it (SGLang's long CSV). */
  readonly layerIds?: number[];
  /** Things the user must know (all-zero loads, a dump without passes), one line each. */
  readonly warnings: string[];
}

/** Which files of a folder are SGLang dumps: the recorder's and the older CSV's names. */
const SGLANG_DUMP_NAME = /^expert_distribution_.*\.(pt|csv)$/i;

/**
 * The files a `--loads` path stands for: a file itself; a TensorRT-LLM expert-statistic folder
 * (it holds `meta_info.json`) as the folder; any other folder as its SGLang dumps
 * (`expert_distribution_*.pt` / `*.csv`), sorted by name.
 *
 * @param path a file or folder
 * @returns paths to read one by one with {@link readLoads}
 * @throws EplbFormatError for a missing path or a folder with neither
 * @example
 * ```ts
 * expandLoadPath("dumps/"); // ["dumps/expert_distribution_recorder_1760000002.0_0.pt", "..._1.pt"]
 * ```
 */
export function expandLoadPath(path: string): string[] {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch (error) {
    throw fileReadError(path, error);
  }
  if (!isDir || existsSync(join(path, "meta_info.json"))) return [path];
  let names: string[];
  try {
    names = readdirSync(path);
  } catch (error) {
    throw fileReadError(path, error);
  }
  const dumps = names.filter((n) => SGLANG_DUMP_NAME.test(n)).sort();
  if (dumps.length === 0) {
    throw new EplbFormatError(
      path,
      "is a folder with no SGLang dumps (expert_distribution_*.pt or *.csv) and no meta_info.json (TensorRT-LLM statistics)",
    );
  }
  return dumps.map((n) => join(path, n));
}

/** One file read, before summing. */
interface Part {
  readonly path: string;
  readonly kind: string;
  readonly loads?: LoadMatrix;
  readonly layerIds?: number[];
  /** A stat dump's `average_utilization_rate_over_window` (SGLang's logged balancedness). */
  readonly logged?: number;
  /** An SGLang per_pass / per_token dump: its records went into the shared pass sum. */
  readonly passes?: true;
}

/**
 * Reads and sums the loads of several files and folders (see {@link expandLoadPath}): SGLang
 * dumps one per rank, TensorRT-LLM folders, or any file {@link readLoads} reads. SGLang
 * per_pass / per_token dumps are folded through their own map and grouped by forward pass, and a
 * `steps` slice then selects passes across all of them; SGLang's long CSVs are merged by model
 * layer id. Warns (in `warnings`) when the loads are all zero, a dump holds no pass, or ranks
 * recorded the same tokens (counted once: see {@link SglangPassSum}).
 *
 * @param paths files or folders; at least one
 * @param options the reader options of {@link readLoads}
 * @returns the summed loads and what they came from
 * @throws EplbFormatError for unreadable files or files that disagree on the shape
 * @example
 * ```ts
 * const s = readLoadSources(["dump_0.pt", "dump_1.pt"]);
 * s.files; // 2
 * s.passes?.steps; // forward passes recorded
 * ```
 */
export function readLoadSources(
  paths: readonly string[],
  options: ReadLoadsOptions = {},
): LoadSource {
  const files = paths.flatMap(expandLoadPath);
  if (files.length === 0) throw new EplbFormatError("--loads", "no file given");
  requireDistinctFiles(files, "it");
  const warnings: string[] = [];
  // One file at a time: a dump's records are summed by pass, then the file is let go.
  const sum = new SglangPassSum();
  const parts = files.map((f) => readPart(f, options, warnings, sum));
  const dumps = parts.filter((p) => p.passes).length;
  const kinds = [...new Set(parts.map((p) => p.kind))];
  let passes: { trace: Float64Trace; passIds: number[] } | undefined;
  let passLoads: LoadMatrix | undefined;
  if (dumps > 0) {
    passes = selectPasses(sum.trace(), options.steps);
    passLoads = sumSteps(passes.trace);
    const repeated = sum.repeats.warning("loads");
    if (repeated) warnings.push(repeated);
    const otherScopes = sum.scopes.warning();
    if (otherScopes) warnings.push(otherScopes);
  }
  const plain = parts.filter((p) => !p.passes);
  const { loads, layerIds } = sumParts(plain, passLoads);
  if (isAllZero(loads.data)) {
    warnings.push(
      `${describeFiles(files)}: the loads are all zero (nothing was recorded); a plan on them is arbitrary`,
    );
  }
  for (const text of warnings) options.onNote?.({ level: "warning", text });
  if (layerIds) {
    options.onNote?.({
      level: "info",
      text: `SGLang CSV: rows are model layers ${layerIds[0]}..${layerIds[layerIds.length - 1]} (${layerIds.length} recorded), experts 0..${loads.experts - 1} (the largest id seen)`,
      layerIds,
    });
  }
  const all = dumps === parts.length && passes;
  const recorded = all && passes ? sum.physical(passes.passIds) : undefined;
  return {
    loads,
    files: files.length,
    kinds,
    ...(all ? { passes: passes?.trace, passIds: passes?.passIds } : {}),
    ...(recorded
      ? { recorded: { slots: recorded.slots, map: recorded.map, physical: recorded.physical } }
      : {}),
    ...(dumps > 0 ? { ranks: [...sum.ranks].sort((a, b) => a - b) } : {}),
    ...(layerIds ? { layerIds } : {}),
    ...(parts.length === 1 && parts[0].logged !== undefined
      ? { loggedBalancedness: parts[0].logged }
      : {}),
    warnings,
  };
}

function readPart(
  path: string,
  options: ReadLoadsOptions,
  warnings: string[],
  sum: SglangPassSum,
): Part {
  const direct = options.key === undefined && options.slotPlacement === undefined;
  const detected = options.format ?? formatOf(path);
  const format = direct ? detected : undefined;
  if (format === "pt") {
    const bytes = readFileBytes(path);
    const { value } = parseBytes(bytes, { ...options, fileName: path });
    const kind = sglangDumpKind(value);
    if (kind === "per_pass" || kind === "per_token") {
      const dump = readSglangPassDump(value, path, bytes.length);
      if (dump.passes.length === 0 && dump.otherScopes.size === 0) {
        warnings.push(
          `${path}: SGLang ${kind} dump with no recorded forward pass (records is empty)`,
        );
      }
      sum.add(dump, path);
      return { path, kind: `SGLang ${kind} dump`, passes: true };
    }
    // Any other torch file goes through readLoads, which knows the other engines' files.
    if (kind !== "stat") return { path, kind: "torch file", loads: readLoads(path, options) };
    const loads = loadsFromValue(value, path, { limit: bytes.length, steps: options.steps });
    const rate = isFileObject(value) ? value.average_utilization_rate_over_window : undefined;
    const logged = typeof rate === "number" && Number.isFinite(rate) ? rate : undefined;
    return { path, kind: "SGLang stat dump", loads, ...(logged !== undefined ? { logged } : {}) };
  }
  if (format === "csv" && isLongCsv(readHead(path))) {
    const { value } = parseBytes(readFileBytes(path), { ...options, fileName: path });
    const loads = loadsFromValue(value, path, {
      limit: Number.MAX_SAFE_INTEGER,
      steps: options.steps,
    });
    if (isFileObject(value) && isTensor(value.layer_ids)) {
      return { path, kind: "SGLang CSV dump", loads, layerIds: Array.from(value.layer_ids.data) };
    }
    return { path, kind: "CSV", loads };
  }
  const kind =
    detected === undefined ? "TensorRT-LLM statistics" : (FORMAT_NAMES[detected] ?? detected);
  return { path, kind, loads: readLoads(path, options) };
}

const FORMAT_NAMES: Record<string, string> = {
  pt: "torch file",
  npy: ".npy",
  npz: ".npz",
  safetensors: "safetensors",
  json: "JSON",
  csv: "CSV",
  yaml: "YAML",
};

/** The detected format from the first 4 kB (the whole file only when it must be parsed whole). */
function formatOf(path: string): FileFormat | undefined {
  try {
    if (statSync(path).isDirectory()) return undefined;
  } catch (error) {
    throw fileReadError(path, error);
  }
  return detectFormat(readHead(path), path);
}

function readHead(path: string): Uint8Array {
  try {
    const fd = openSync(path, "r");
    try {
      const buf = new Uint8Array(4096);
      return buf.subarray(0, readSync(fd, buf, 0, buf.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    throw fileReadError(path, error);
  }
}

function selectPasses(
  p: { trace: Float64Trace; passIds: number[] },
  steps: string | undefined,
): { trace: Float64Trace; passIds: number[] } {
  if (steps === undefined || p.trace.steps === 0) return p;
  const { start, step, count } = selectSteps(steps, p.trace.steps);
  const { layers, experts } = p.trace;
  const n = layers * experts;
  const data = new Float64Array(count * n);
  const passIds: number[] = [];
  for (let k = 0; k < count; k++) {
    const t = start + k * step;
    data.set(p.trace.data.subarray(t * n, (t + 1) * n), k * n);
    passIds.push(p.passIds[t]);
  }
  return { trace: { steps: count, layers, experts, data }, passIds };
}

function sumSteps(trace: Float64Trace): LoadMatrix {
  const n = trace.layers * trace.experts;
  const data = new Float64Array(n);
  for (let t = 0; t < trace.steps; t++) {
    for (let i = 0; i < n; i++) data[i] += trace.data[t * n + i];
  }
  return { layers: trace.layers, experts: trace.experts, data };
}

/** Sums the parts; long CSVs by model layer id (a rank may not have seen the highest experts). */
function sumParts(
  parts: readonly Part[],
  first: LoadMatrix | undefined,
): { loads: LoadMatrix; layerIds?: number[] } {
  const all = parts.map((p) => p.loads as LoadMatrix);
  if (parts.length > 0 && parts.every((p) => p.layerIds) && !first) {
    const ids = [...new Set(parts.flatMap((p) => p.layerIds as number[]))].sort((a, b) => a - b);
    const row = new Map(ids.map((id, i) => [id, i]));
    const experts = Math.max(...all.map((m) => m.experts));
    const data = new Float64Array(ids.length * experts);
    parts.forEach((p, i) => {
      const m = all[i];
      (p.layerIds as number[]).forEach((id, l) => {
        const base = (row.get(id) as number) * experts;
        for (let e = 0; e < m.experts; e++) data[base + e] += m.data[l * m.experts + e];
      });
    });
    return { loads: { layers: ids.length, experts, data }, layerIds: ids };
  }
  const ref = first ?? all[0];
  const refName = first ? "the SGLang dumps" : parts[0].path;
  const data = new Float64Array(ref.layers * ref.experts);
  if (first) data.set(first.data);
  parts.forEach((p, i) => {
    const m = all[i];
    if (m.layers !== ref.layers || m.experts !== ref.experts) {
      throw new EplbFormatError(
        p.path,
        `has ${m.layers} layers x ${m.experts} experts but ${refName} ${first ? "have" : "has"} ${ref.layers} x ${ref.experts}: files summed must be of one model`,
      );
    }
    for (let j = 0; j < data.length; j++) data[j] += m.data[j];
  });
  return { loads: { layers: ref.layers, experts: ref.experts, data } };
}

function isAllZero(data: Float64Array): boolean {
  for (let i = 0; i < data.length; i++) if (data[i] !== 0) return false;
  return true;
}

function describeFiles(files: readonly string[]): string {
  return files.length === 1 ? files[0] : `${files.length} files (${basename(files[0])}, ...)`;
}

/**
 * Several files, or folders, as one trace: SGLang per_pass / per_token dumps of one recording
 * (one per rank) summed pass by pass, records matched by forward pass id as SGLang all-reduces
 * them. Other files are refused: their steps need not be the same moments.
 *
 * @param paths files or folders
 * @param options `format` and `steps` (over the passes); `key` and `slotPlacement` are refused
 * @returns one step per forward pass, and the warnings of {@link readLoadSources}
 * @throws EplbFormatError for files that are not SGLang pass dumps, or dumps without a pass
 * @example
 * ```ts
 * readRankTraces(["dumps/"]).trace.steps; // forward passes recorded
 * ```
 */
export function readRankTraces(
  paths: readonly string[],
  options: ReadLoadsOptions = {},
): { trace: Float64Trace; warnings: string[] } {
  const where = paths.join(", ");
  if (options.key !== undefined || options.slotPlacement !== undefined) {
    throw new EplbFormatError(
      where,
      "several traces are SGLang rank dumps: a key or slot placement does not apply",
    );
  }
  const source = readLoadSources(paths, { format: options.format, steps: options.steps });
  if (!source.passes) {
    throw new EplbFormatError(
      where,
      `several traces are summed step by step only when they are SGLang per_pass / per_token dumps (matched by forward pass id); these are ${source.kinds.join(", ")}: give one trace`,
    );
  }
  if (source.passes.steps === 0)
    throw new EplbFormatError(where, "the SGLang dumps hold no forward pass");
  return { trace: source.passes, warnings: source.warnings };
}

/**
 * One line saying what the loads came from, for command summaries.
 *
 * @param s what {@link readLoadSources} returned
 * @returns e.g. `2 files summed (SGLang per_pass dump), 4 forward passes, ranks 0, 1`
 * @example
 * ```ts
 * describeLoadSource(readLoadSources(["a.pt", "b.pt"]));
 * ```
 */
export function describeLoadSource(s: LoadSource): string {
  const parts = [
    `${s.files} file${s.files === 1 ? "" : "s"}${s.files > 1 ? " summed" : ""} (${s.kinds.join(", ")})`,
  ];
  if (s.passes) parts.push(`${s.passes.steps} forward pass${s.passes.steps === 1 ? "" : "es"}`);
  if (s.ranks && s.ranks.length > 0)
    parts.push(`rank${s.ranks.length === 1 ? "" : "s"} ${s.ranks.join(", ")}`);
  if (s.loggedBalancedness !== undefined) {
    parts.push(
      `SGLang logged balancedness ${s.loggedBalancedness.toFixed(3)} (its window average)`,
    );
  }
  return parts.join(", ");
}
