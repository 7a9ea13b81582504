import { EplbInputError } from "../core/model/errors.js";
import { AtomicFile, writeFileAtomic } from "./atomic-write.js";

/** Element types the `.npy` writer produces (little-endian). */
export type NpyWriteDType = "float32" | "float64" | "int64";

const DESCR: Record<NpyWriteDType, string> = { float32: "<f4", float64: "<f8", int64: "<i8" };
const SIZE: Record<NpyWriteDType, number> = { float32: 4, float64: 8, int64: 8 };

function checkShape(shape: readonly number[]): number {
  let numel = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new EplbInputError("shape", `[${shape.join(", ")}]`, "must hold integers >= 0");
    }
    numel *= d;
  }
  return numel;
}

/**
 * The header of a version 1.0 `.npy` file: magic, version, header length, and the Python dict
 * literal padded with spaces and a newline so the data starts on a 64-byte boundary.
 *
 * @example
 * ```ts
 * new TextDecoder().decode(npyHeader("float32", [2, 3]).subarray(10)).trimEnd();
 * // "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
 * ```
 */
export function npyHeader(dtype: NpyWriteDType, shape: readonly number[]): Uint8Array {
  if (!(dtype in DESCR)) {
    throw new EplbInputError("dtype", dtype, `must be one of: ${Object.keys(DESCR).join(", ")}`);
  }
  checkShape(shape);
  const tuple = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${tuple}, }`;
  const total = Math.ceil((10 + dict.length + 1) / 64) * 64;
  const text = `${dict}${" ".repeat(total - 10 - dict.length - 1)}\n`;
  const out = new Uint8Array(total);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, text.length, true);
  for (let i = 0; i < text.length; i++) out[10 + i] = text.charCodeAt(i);
  return out;
}

/** Encodes numbers as little-endian elements of `dtype`; int64 requires safe integers. */
function encodeValues(values: ArrayLike<number>, dtype: NpyWriteDType): Uint8Array {
  const n = values.length;
  const bytes = new Uint8Array(n * SIZE[dtype]);
  const view = new DataView(bytes.buffer);
  if (dtype === "float32") for (let i = 0; i < n; i++) view.setFloat32(i * 4, values[i], true);
  else if (dtype === "float64") for (let i = 0; i < n; i++) view.setFloat64(i * 8, values[i], true);
  else {
    for (let i = 0; i < n; i++) {
      const v = values[i];
      if (!Number.isSafeInteger(v)) {
        throw new EplbInputError(
          `values[${i}]`,
          v,
          "must be a safe integer to be written as int64",
        );
      }
      // Two 32-bit halves instead of BigInt: same bytes, many times faster for big traces.
      const hi = Math.floor(v / 4294967296);
      view.setUint32(i * 8, v - hi * 4294967296, true);
      view.setInt32(i * 8 + 4, hi, true);
    }
  }
  return bytes;
}

/**
 * A whole `.npy` v1 file in memory (C order).
 *
 * @example
 * ```ts
 * encodeNpy([1, 2, 3, 4], [2, 2], "int64").length; // 160: a 128-byte header and 4 x 8 bytes
 * ```
 */
export function encodeNpy(
  values: ArrayLike<number>,
  shape: readonly number[],
  dtype: NpyWriteDType,
): Uint8Array {
  const numel = checkShape(shape);
  if (values.length !== numel) {
    throw new EplbInputError(
      "values.length",
      values.length,
      `must equal the shape's ${numel} elements`,
    );
  }
  const header = npyHeader(dtype, shape);
  const out = new Uint8Array(header.length + numel * SIZE[dtype]);
  out.set(header);
  out.set(encodeValues(values, dtype), header.length);
  return out;
}

/**
 * Streams a `.npy` v1 file to disk in C order, for arrays too large to hold: the header first,
 * then values in any number of `write` calls; `close` checks that exactly the shape's count came.
 *
 * @example
 * ```ts
 * const w = new NpyWriter("counts.npy", "int64", [1000, 2, 4]); // steps x layers x experts
 * const stepCounts = new Float64Array(2 * 4).fill(3);
 * for (let t = 0; t < 1000; t++) w.write(stepCounts); // 2 * 4 values each
 * w.close();
 * readNpyHeader(readFileSync("counts.npy"), "counts.npy").shape; // [1000, 2, 4]
 * ```
 */
export class NpyWriter {
  readonly path: string;
  readonly dtype: NpyWriteDType;
  readonly shape: readonly number[];
  private readonly numel: number;
  private written = 0;
  private file: AtomicFile | null;

  constructor(path: string, dtype: NpyWriteDType, shape: readonly number[]) {
    const header = npyHeader(dtype, shape);
    this.path = path;
    this.dtype = dtype;
    this.shape = [...shape];
    this.numel = checkShape(shape);
    // Written under a temporary name and renamed by close(): an interrupted write (disk full,
    // a crash) never leaves a truncated .npy where the previous file was.
    this.file = new AtomicFile(path);
    this.file.write(header);
  }

  /** Appends values (converted to the file's dtype). */
  write(values: ArrayLike<number>): void {
    if (this.file === null) throw new Error(`${this.path}: NpyWriter already closed`);
    if (this.written + values.length > this.numel) {
      this.abort();
      throw new EplbInputError(
        "values",
        this.written + values.length,
        `exceed the shape's ${this.numel} elements`,
      );
    }
    this.file.write(encodeValues(values, this.dtype));
    this.written += values.length;
  }

  /**
   * Closes the file and puts it in place; throws (leaving any previous file untouched) when fewer
   * values than the shape holds were written.
   */
  close(): void {
    if (this.file === null) return;
    if (this.written !== this.numel) {
      this.abort();
      throw new EplbInputError(
        "values",
        this.written,
        `must total the shape's ${this.numel} elements`,
      );
    }
    const file = this.file;
    this.file = null;
    file.commit();
  }

  /** Gives up: the temporary file is removed and any previous file at the path stays. */
  abort(): void {
    this.file?.abort();
    this.file = null;
  }
}

/**
 * Writes a whole array as a `.npy` v1 file.
 *
 * @example
 * ```ts
 * writeNpy("loads.npy", new Float64Array([1, 2, 3, 4]), [2, 2], "float64");
 * // numpy.load("loads.npy") -> array([[1., 2.], [3., 4.]])
 * ```
 */
export function writeNpy(
  path: string,
  values: ArrayLike<number>,
  shape: readonly number[],
  dtype: NpyWriteDType,
): void {
  // Encoding first means a bad value or length leaves no half-written file behind.
  const bytes = encodeNpy(values, shape, dtype);
  writeFileAtomic(path, bytes);
}
