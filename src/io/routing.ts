/**
 * Routing files in: per-token top-k logical expert ids as `.npy` integers `[tokens, layers, k]`
 * (or `[steps, tokens, layers, k]` for the simulator, read one step at a time), and SGLang
 * `per_token` dumps through {@link readRouting}. Ids are checked against the loads' expert
 * count as they are decoded, so a routing of another model is refused, never misread.
 */
import { closeSync, openSync, statSync } from "node:fs";
import { makeRouting, type Routing } from "../core/routing/routing.js";
import { requireDistinctFiles } from "./distinct-files.js";
import { EplbFormatError, fileReadError } from "./errors.js";
import type { NpyHeader } from "./npy.js";
import { INTEGER_DTYPES, npyFileHeader, readAt } from "./npy-stream.js";
import { readRouting, type TokenRouting } from "./sglang-routing.js";
import { DTYPE_SIZE } from "./tensor.js";

/**
 * The most (token, layer, choice) entries a routing may hold in memory: 2^27 int32 ids
 * (512 MiB), e.g. 250,000 tokens of a 61-layer top-8 model. Larger recordings are refused in one
 * line: give a slice of the tokens (numpy: `np.save(f, ids[:100000])`).
 */
export const MAX_ROUTING_ENTRIES = 2 ** 27;

/** Elements decoded per read: bounds the byte buffer whatever the file's size. */
const CHUNK_ELEMENTS = 1 << 20;

/** An open `.npy` file: its header, descriptor and size. */
interface NpyFile {
  readonly fd: number;
  readonly path: string;
  readonly header: NpyHeader;
}

/** Opens `path` and parses its `.npy` header, or returns null (file closed) for another format. */
function openNpy(path: string): NpyFile | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw fileReadError(path, error);
  }
  try {
    const header = npyFileHeader(fd, path);
    if (!header) {
      closeSync(fd);
      return null;
    }
    if (!INTEGER_DTYPES.has(header.dtype) || header.dtype === "bool") {
      throw new EplbFormatError(
        path,
        `routing holds ${header.descr} values: expert ids must be integers (int8 .. int64, uint8 .. uint64)`,
      );
    }
    if (header.fortranOrder) {
      throw new EplbFormatError(
        path,
        "routing is in Fortran order: save it in C order (np.save(f, np.ascontiguousarray(ids)))",
      );
    }
    return { fd, path, header };
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * Decodes `count` integer ids from `bytes` into `out[at ..]`, each `-1` or below `experts`.
 * `index` is the file's element index of the first one, for messages.
 */
function decodeIds(
  file: NpyFile,
  bytes: Uint8Array,
  count: number,
  out: Int32Array,
  at: number,
  experts: number,
  index: number,
): void {
  const { dtype, littleEndian, shape } = file.header;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const size = DTYPE_SIZE[dtype];
  const le = littleEndian;
  for (let i = 0; i < count; i++) {
    const p = i * size;
    let v: number;
    switch (dtype) {
      case "int8":
        v = view.getInt8(p);
        break;
      case "uint8":
        v = view.getUint8(p);
        break;
      case "int16":
        v = view.getInt16(p, le);
        break;
      case "uint16":
        v = view.getUint16(p, le);
        break;
      case "int32":
        v = view.getInt32(p, le);
        break;
      case "uint32":
        v = view.getUint32(p, le);
        break;
      default: {
        // 64-bit: the value fits when the high word only extends the sign of the low one.
        const lo = view.getInt32(le ? p : p + 4, le);
        const hi = view.getInt32(le ? p + 4 : p, le);
        v = hi === (lo < 0 && dtype === "int64" ? -1 : 0) ? lo : Number.NaN;
        if (dtype === "uint64" && lo < 0) v = Number.NaN;
      }
    }
    if (!(v === -1 || (v >= 0 && v < experts))) {
      throw new EplbFormatError(
        file.path,
        `routing id at [${unravel(index + i, shape).join(", ")}] is ${Number.isNaN(v) ? "out of the int32 range" : v}: ids must be -1 (no choice) or an expert of the loads, 0 .. ${experts - 1}`,
      );
    }
    out[at + i] = v;
  }
}

function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let rest = index;
  for (let d = shape.length - 1; d >= 0; d--) {
    out[d] = rest % shape[d];
    rest = Math.floor(rest / shape[d]);
  }
  return out;
}

/** Reads `count` ids from element `first` of the file into `out[at ..]`, a chunk at a time. */
function readIds(
  file: NpyFile,
  first: number,
  count: number,
  out: Int32Array,
  at: number,
  experts: number,
  buffer: Uint8Array,
): void {
  const size = DTYPE_SIZE[file.header.dtype];
  for (let done = 0; done < count; ) {
    const n = Math.min(CHUNK_ELEMENTS, count - done);
    const bytes = buffer.subarray(0, n * size);
    const got = readAt(file.fd, file.path, bytes, file.header.dataOffset + (first + done) * size);
    if (got !== bytes.length) {
      throw new EplbFormatError(
        file.path,
        `truncated: element ${first + done + got / size} ends the file early`,
      );
    }
    decodeIds(file, bytes, n, out, at + done, experts, first + done);
    done += n;
  }
}

function requireEntries(path: string, shape: readonly number[], entries: number): void {
  if (entries > MAX_ROUTING_ENTRIES) {
    throw new EplbFormatError(
      path,
      `routing of shape [${shape.join(", ")}] holds ${entries} ids, more than eplb reads (${MAX_ROUTING_ENTRIES}, 512 MiB): give fewer tokens`,
    );
  }
}

function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch (error) {
    throw fileReadError(path, error);
  }
}

/**
 * Reads the routing of `--routing`: `.npy` files of integer ids `[tokens, layers, k]` (several
 * are one routing, their tokens in order, sources unknown), or SGLang `per_token` dumps (files
 * or folders; each token's rank kept). Ids must be `-1` or below `experts` (the loads' count).
 * `.npy` files are decoded a chunk at a time into one `Int32Array`. Dumps whose ranks recorded
 * the same tokens (SGLang without DeepEP) give each token once, with no source rank, and a
 * warning to `onWarning`.
 *
 * @param paths the files or folders, as given
 * @param experts the loads' experts per layer
 * @param onWarning told, in one line, what the user must know (ranks that recorded the same tokens)
 * @returns the routing, validated
 * @throws EplbFormatError for an unreadable file, an id beyond `experts`, files that disagree
 *   on layers or k, a mix of `.npy` and dumps, or more than {@link MAX_ROUTING_ENTRIES} ids
 * @example
 * ```ts
 * writeNpy("routing.npy", [0, 1, 2, 3], [2, 1, 2], "int64"); // 2 tokens, 1 layer, top-2
 * readRoutingFiles(["routing.npy"], 4).topk; // Int32Array [0, 1, 2, 3]
 * readRoutingFiles(["routing.npy"], 3);
 * // throws EplbFormatError: routing.npy: routing id at [1, 0, 1] is 3: ids must be -1 (no choice) or an expert of the loads, 0 .. 2
 * ```
 */
export function readRoutingFiles(
  paths: readonly string[],
  experts: number,
  onWarning?: (text: string) => void,
): Routing {
  const npy: NpyFile[] = [];
  const dumps: string[] = [];
  try {
    for (const path of paths) {
      const file = isFolder(path) ? null : openNpy(path);
      if (file) npy.push(file);
      else dumps.push(path);
    }
    if (npy.length > 0 && dumps.length > 0) {
      throw new EplbFormatError(
        dumps[0],
        `is not a .npy routing, unlike ${npy[0].path}: give either .npy files or SGLang per_token dumps`,
      );
    }
    if (npy.length > 0) return readNpyRouting(npy, experts);
    return readDumpRouting(dumps, experts, onWarning);
  } finally {
    for (const f of npy) closeSync(f.fd);
  }
}

function readNpyRouting(files: readonly NpyFile[], experts: number): Routing {
  // Dumps are checked by readRouting, after their folders are expanded.
  requireDistinctFiles(
    files.map((f) => f.path),
    "its tokens",
  );
  let layers = 0;
  let k = 0;
  let tokens = 0;
  for (const f of files) {
    const { shape } = f.header;
    if (shape.length !== 3) {
      throw new EplbFormatError(
        f.path,
        `routing has shape [${shape.join(", ")}]: it must be [tokens, layers, k]${shape.length === 4 ? " (a [steps, tokens, layers, k] routing is for eplb simulate)" : ""}`,
      );
    }
    if (shape[1] === 0 || shape[2] === 0) {
      throw new EplbFormatError(
        f.path,
        `routing has shape [${shape.join(", ")}]: no layers or no choices`,
      );
    }
    if (tokens === 0 && layers === 0) [layers, k] = [shape[1], shape[2]];
    if (shape[1] !== layers || shape[2] !== k) {
      throw new EplbFormatError(
        f.path,
        `routing has ${shape[1]} layers x ${shape[2]} choices, unlike ${files[0].path} (${layers} x ${k})`,
      );
    }
    tokens += shape[0];
    requireEntries(f.path, shape, tokens * layers * k);
  }
  const topk = new Int32Array(tokens * layers * k);
  const buffer = new Uint8Array(CHUNK_ELEMENTS * 8);
  let at = 0;
  for (const f of files) {
    const n = f.header.shape[0] * layers * k;
    readIds(f, 0, n, topk, at, experts, buffer);
    at += n;
  }
  return makeRouting({ tokens, layers, k, experts, topk, rank: null });
}

/** SGLang per_token dumps' routing, refused when too large or of another expert count. */
function readCheckedDumps(paths: readonly string[], experts: number): TokenRouting {
  const r = readRouting(paths);
  requireEntries(paths[0], [r.tokens, r.layers, r.k], r.topk.length);
  if (r.experts !== experts) {
    throw new EplbFormatError(
      paths[0],
      `routing dumps map ${r.experts} experts per layer, the loads ${experts}: they must come from the same model`,
    );
  }
  return r;
}

function readDumpRouting(
  paths: readonly string[],
  experts: number,
  onWarning?: (text: string) => void,
): Routing {
  const r = readCheckedDumps(paths, experts);
  if (r.repeated) onWarning?.(r.repeated);
  if (r.otherScopes) onWarning?.(r.otherScopes);
  return makeRouting({
    tokens: r.tokens,
    layers: r.layers,
    k: r.k,
    experts,
    topk: r.topk,
    // Every rank held the repeated tokens: none is their source.
    rank: r.repeated ? null : r.rank,
  });
}

/**
 * A routing trace `[steps, tokens, layers, k]` in a `.npy` file, read one step at a time (the
 * simulator holds one step's routing, whatever the file's size).
 */
export interface RoutingTrace {
  readonly steps: number;
  readonly tokens: number;
  readonly layers: number;
  readonly k: number;
  readonly experts: number;
  /**
   * Step `step`'s routing; its `topk` is one buffer reused by every call (copy it to keep it).
   * Checks every id as it decodes it.
   */
  readStep(step: number): Routing;
  /** Releases the file. */
  close(): void;
}

/**
 * Opens a `.npy` routing trace `[steps, tokens, layers, k]` for `eplb simulate --routing`.
 *
 * @param path the file
 * @param experts the trace's experts per layer (ids must be -1 or below it)
 * @returns the trace, open: close it when done
 * @throws EplbFormatError for a file that is not a 4-D integer `.npy`, or whose steps hold more
 *   than {@link MAX_ROUTING_ENTRIES} ids
 * @example
 * ```ts
 * writeNpy("steps.npy", [0, 1, 1, -1], [2, 1, 1, 2], "int64"); // 2 steps of 1 token, top-2
 * const trace = openRoutingTrace("steps.npy", 2);
 * Array.from(trace.readStep(1).topk); // [1, -1]
 * trace.close();
 * ```
 */
export function openRoutingTrace(path: string, experts: number): RoutingTrace {
  const file = openNpy(path);
  if (!file) {
    throw new EplbFormatError(
      path,
      "is not a .npy file: eplb simulate --routing reads a [steps, tokens, layers, k] .npy of expert ids",
    );
  }
  const { shape } = file.header;
  if (shape.length !== 4 || shape.slice(1).includes(0) || shape[0] === 0) {
    closeSync(file.fd);
    throw new EplbFormatError(
      path,
      `routing has shape [${shape.join(", ")}]: eplb simulate --routing needs [steps, tokens, layers, k], none of them 0`,
    );
  }
  const [steps, tokens, layers, k] = shape;
  const per = tokens * layers * k;
  try {
    requireEntries(path, shape, per);
  } catch (error) {
    closeSync(file.fd);
    throw error;
  }
  const topk = new Int32Array(per);
  const buffer = new Uint8Array(Math.min(CHUNK_ELEMENTS, per) * DTYPE_SIZE[file.header.dtype]);
  let open = true;
  return {
    steps,
    tokens,
    layers,
    k,
    experts,
    readStep(step: number): Routing {
      if (!open) throw new Error(`${path}: read after close`);
      readIds(file, step * per, per, topk, 0, experts, buffer);
      return { tokens, layers, k, experts, topk, rank: null };
    },
    close(): void {
      if (open) closeSync(file.fd);
      open = false;
    },
  };
}

/**
 * The routing of SGLang `per_token` dumps split into forward passes, in pass id order (the
 * steps `eplb simulate --trace DIR` replays from the same dumps): pass `i`'s tokens, from every
 * rank, each with its rank; when ranks recorded the same tokens (SGLang without DeepEP), each
 * token once with no rank (`rank` null) and `repeated` the warning.
 *
 * @param paths `per_token` dump files or folders
 * @param experts the loads' experts per layer
 * @returns the forward pass ids in order, each pass's routing, and the repeats' warning if any
 * @throws EplbFormatError as {@link readRoutingFiles}
 * @example
 * ```ts
 * const { passIds, passes } = readPassRouting(["per_token/"], 8);
 * passes[0].tokens; // the tokens of the first pass, over all ranks
 * ```
 */
export function readPassRouting(
  paths: readonly string[],
  experts: number,
): { passIds: number[]; passes: Routing[]; repeated?: string } {
  const r = readCheckedDumps(paths, experts);
  const width = r.layers * r.k;
  const byPass = new Map<number, number[]>();
  for (let t = 0; t < r.tokens; t++) {
    const id = r.forwardPassId[t];
    const list = byPass.get(id);
    if (list) list.push(t);
    else byPass.set(id, [t]);
  }
  const passIds = [...byPass.keys()].sort((a, b) => a - b);
  const passes = passIds.map((id) => {
    const tokens = byPass.get(id) as number[];
    const topk = new Int32Array(tokens.length * width);
    const rank = new Int32Array(tokens.length);
    tokens.forEach((t, i) => {
      topk.set(r.topk.subarray(t * width, (t + 1) * width), i * width);
      rank[i] = r.rank[t];
    });
    return makeRouting({
      tokens: tokens.length,
      layers: r.layers,
      k: r.k,
      experts,
      topk,
      rank: r.repeated ? null : rank,
    });
  });
  return { passIds, passes, ...(r.repeated ? { repeated: r.repeated } : {}) };
}
