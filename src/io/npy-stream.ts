import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import type { LoadTrace } from "../core/traces/estimators.js";
import type { TraceSource } from "../core/traces/simulate.js";
import { EplbFormatError, fileReadError } from "./errors.js";
import { checkLoadShape, checkLoads, selectSteps } from "./interpret.js";
import { isNpy, type NpyHeader, npyHeaderBytes, npyNumel, readNpyHeader } from "./npy.js";
import { DTYPE_SIZE, type DType, decodeElements } from "./tensor.js";

/** A `.npy` trace `[steps, layers, experts]` read from disk one step at a time. */
export interface NpyTraceSource extends TraceSource {
  /** The element type in the file. */
  readonly dtype: DType;
  /** Whether the file holds integers (counts), which a materialised copy may keep as int32. */
  readonly integer: boolean;
  /** Releases the file; reading after it is an error. */
  close(): void;
}

/** Integer dtypes: a step of them is exact in int32 when every value is below 2^31. */
export const INTEGER_DTYPES: ReadonlySet<DType> = new Set([
  "bool",
  "int8",
  "uint8",
  "int16",
  "uint16",
  "int32",
  "uint32",
  "int64",
  "uint64",
]);

/**
 * Opens a C-order `.npy` trace `[steps, layers, experts]` for reading one step at a time, so a
 * replay holds one step in memory, not the whole file (a 10,000 x 58 x 256 int64 trace is 1.2 GB
 * on disk, and files over 2 GiB cannot be read whole at all). `steps` selects a Python-like slice
 * as `readTrace` does. Every step read is checked (finite, >= 0) with the element's index in the
 * message. Returns null for what it does not stream (not a `.npy` file, not 3-D, Fortran order):
 * read those whole with `readTrace`. Bad files (wrong magic, truncated data, a bad header) are
 * {@link EplbFormatError}s, as from the whole-file reader.
 *
 * @example
 * ```ts
 * const config = { numReplicas: 16, numGroups: 1, numNodes: 1, numGpus: 4, interval: 4, window: 4 };
 * const source = openNpyTrace("trace.npy", { steps: "-2000:" });
 * if (source) {
 *   try {
 *     simulate(source, config); // reads each step once, in order
 *   } finally {
 *     source.close();
 *   }
 * }
 * ```
 */
export function openNpyTrace(
  path: string,
  options: { readonly steps?: string } = {},
): NpyTraceSource | null {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (error) {
    throw fileReadError(path, error);
  }
  try {
    const source = streamable(fd, path, options.steps);
    if (!source) closeSync(fd);
    return source;
  } catch (error) {
    closeSync(fd);
    throw error;
  }
}

/**
 * Fills `into` from byte `position` of an open file; a system error becomes the file's one-line
 * {@link EplbFormatError}.
 *
 * @returns the bytes read (fewer than asked at the end of the file)
 * @throws EplbFormatError when the system refuses the read
 * @example
 * ```ts
 * import { openSync } from "node:fs";
 * readAt(openSync("trace.npy", "r"), "trace.npy", new Uint8Array(12), 0); // 12
 * ```
 */
export function readAt(fd: number, path: string, into: Uint8Array, position: number): number {
  try {
    return readSync(fd, into, 0, into.length, position);
  } catch (error) {
    throw fileReadError(path, error);
  }
}

/**
 * The header of an open `.npy` file, its data length checked against the shape (a lying header
 * fails here, before anything is allocated from it), or null when the file is not a `.npy`.
 *
 * @param fd an open file
 * @param path its name, for messages
 * @returns the header, or null
 * @throws EplbFormatError for a broken header or a data length unlike the shape's
 * @example
 * ```ts
 * import { openSync } from "node:fs";
 * npyFileHeader(openSync("trace.npy", "r"), "trace.npy")?.shape; // [16, 4, 16]
 * ```
 */
export function npyFileHeader(fd: number, path: string): NpyHeader | null {
  let size: number;
  try {
    size = fstatSync(fd).size;
  } catch (error) {
    throw fileReadError(path, error);
  }
  const prefix = new Uint8Array(Math.min(12, size));
  readAt(fd, path, prefix, 0);
  if (!isNpy(prefix)) return null;
  const headerBytes = npyHeaderBytes(prefix, path);
  const head = new Uint8Array(Math.min(headerBytes, size));
  readAt(fd, path, head, 0);
  const header = readNpyHeader(head, path);
  npyNumel(header, size - header.dataOffset, path);
  return header;
}

function streamable(fd: number, path: string, steps: string | undefined): NpyTraceSource | null {
  const header = npyFileHeader(fd, path);
  if (!header) return null;
  const { shape } = header;
  if (shape.length !== 3 || header.fortranOrder) return null;
  if (shape.includes(0)) {
    throw new EplbFormatError(path, `loads has shape [${shape.join(", ")}]: it is empty`);
  }
  checkLoadShape(shape[1], shape[2], "loads", path);
  return new NpyStepReader(fd, path, header, selectSteps(steps, shape[0]));
}

class NpyStepReader implements NpyTraceSource {
  readonly steps: number;
  readonly layers: number;
  readonly experts: number;
  readonly dtype: DType;
  readonly integer: boolean;
  private fd: number;
  private readonly path: string;
  private readonly littleEndian: boolean;
  private readonly dataOffset: number;
  private readonly first: number;
  private readonly stride: number;
  private readonly bytes: Uint8Array;

  constructor(
    fd: number,
    path: string,
    header: NpyHeader,
    slice: { start: number; step: number; count: number },
  ) {
    this.fd = fd;
    this.path = path;
    this.steps = slice.count;
    this.layers = header.shape[1];
    this.experts = header.shape[2];
    this.dtype = header.dtype;
    this.integer = INTEGER_DTYPES.has(header.dtype);
    this.littleEndian = header.littleEndian;
    this.dataOffset = header.dataOffset;
    this.first = slice.start;
    this.stride = slice.step;
    this.bytes = new Uint8Array(this.layers * this.experts * DTYPE_SIZE[header.dtype]);
  }

  readStep(step: number, out: Float64Array, offset: number): void {
    if (this.fd < 0) throw new Error(`${this.path}: read after close`);
    const n = this.layers * this.experts;
    const fileStep = this.first + step * this.stride;
    const position = this.dataOffset + fileStep * this.bytes.length;
    const got = readAt(this.fd, this.path, this.bytes, position);
    if (got !== this.bytes.length) {
      throw new EplbFormatError(this.path, `truncated: step ${fileStep} ends the file early`);
    }
    const target = out.subarray(offset, offset + n);
    decodeElements(this.bytes, this.dtype, this.littleEndian, n, this.path, target);
    checkLoads(target, [this.layers, this.experts], `loads[${fileStep}]`, this.path);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
}

/**
 * Reads every step of a streamed trace into memory, as compactly as exact: int32 when the file
 * holds integers below 2^31 (counts; half of float64's memory), float64 otherwise. For sweeps,
 * whose worker threads share one copy of the trace: with `shared` the arrays live in a
 * SharedArrayBuffer, which the threads use as is.
 *
 * @example
 * ```ts
 * const trace = readAllSteps(openNpyTrace("trace.npy")!); // { steps, layers, experts, data: Int32Array }
 * ```
 */
export function readAllSteps(
  source: NpyTraceSource,
  options: { readonly shared?: boolean } = {},
): LoadTrace {
  const { steps, layers, experts } = source;
  const n = layers * experts;
  const step = new Float64Array(n);
  // Worker threads can share a SharedArrayBuffer without a copy.
  const memory = (bytes: number) =>
    options.shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes);
  let ints: Int32Array | null = source.integer ? new Int32Array(memory(4 * steps * n)) : null;
  let floats: Float64Array | null = ints ? null : new Float64Array(memory(8 * steps * n));
  for (let t = 0; t < steps; t++) {
    source.readStep(t, step, 0);
    if (ints) {
      let fits = true;
      for (let i = 0; i < n; i++) if (step[i] > 2147483647) fits = false;
      if (!fits) {
        // A count too large for int32: widen what was read so far and go on in float64.
        floats = new Float64Array(memory(8 * steps * n));
        floats.set(ints.subarray(0, t * n));
        ints = null;
      } else {
        ints.set(step, t * n);
        continue;
      }
    }
    (floats as Float64Array).set(step, t * n);
  }
  return { steps, layers, experts, data: ints ?? (floats as Float64Array) };
}
