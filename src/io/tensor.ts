import { copyBytes } from "./bytes.js";
import { EplbFormatError } from "./errors.js";

/** Element types the readers decode. Every value becomes a float64 in {@link Tensor.data}. */
export type DType =
  | "bool"
  | "int8"
  | "uint8"
  | "int16"
  | "uint16"
  | "int32"
  | "uint32"
  | "int64"
  | "uint64"
  | "float16"
  | "bfloat16"
  | "float32"
  | "float64";

/**
 * An n-dimensional array read from a file, materialised contiguous and row-major (C order)
 * whatever the file's layout (Fortran order, storage offset, strides): element `[i, j, k]` of a
 * `[a, b, c]` tensor is `data[(i * b + j) * c + k]`.
 */
export interface Tensor {
  /** The element type in the file (the values are exact in float64 for every integer type). */
  readonly dtype: DType;
  readonly shape: number[];
  readonly data: Float64Array;
}

/** Bytes per element of each dtype. */
export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  bool: 1,
  int8: 1,
  uint8: 1,
  int16: 2,
  uint16: 2,
  int32: 4,
  uint32: 4,
  int64: 8,
  uint64: 8,
  float16: 2,
  bfloat16: 2,
  float32: 4,
  float64: 8,
};

/** Most dimensions a tensor may have (numpy's own limit is 64; deeper is a hostile file). */
export const MAX_DIMS = 32;

/**
 * Most elements one array read whole may have: 2^28 (2 GiB as float64), far above any loads,
 * placement or trace eplb plans from (a longer `.npy` trace is streamed a step at a time). A
 * header declaring more is refused before anything is allocated.
 */
export const MAX_TENSOR_ELEMENTS = 2 ** 28;

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * True when `value` is a {@link Tensor} produced by these readers (a Float64Array `data` and a
 * numeric `shape`), as opposed to a dict that merely has those keys.
 *
 * @example
 * ```ts
 * isTensor({ dtype: "int64", shape: [2], data: new Float64Array(2) }); // true
 * isTensor({ shape: [2], data: [1, 2] }); // false
 * ```
 */
export function isTensor(value: unknown): value is Tensor {
  return (
    typeof value === "object" &&
    value !== null &&
    (value as Tensor).data instanceof Float64Array &&
    Array.isArray((value as Tensor).shape) &&
    typeof (value as Tensor).dtype === "string"
  );
}

/**
 * Number of elements of `shape`, checked: every dimension a non-negative safe integer, at most
 * {@link MAX_DIMS} dimensions, the product not above `cap` ({@link MAX_TENSOR_ELEMENTS} unless
 * the caller streams the array) nor above `limit` (the caller passes what the file can actually
 * hold, so a lying header fails here instead of allocating gigabytes).
 *
 * @example
 * ```ts
 * checkedNumel([16, 4, 16], 1e6, "x.npy", "shape"); // 1024
 * checkedNumel([1e9, 1e9], 1e6, "x.npy", "shape"); // throws EplbFormatError
 * ```
 */
export function checkedNumel(
  shape: unknown,
  limit: number,
  file: string,
  what: string,
  cap: number = MAX_TENSOR_ELEMENTS,
): number {
  if (!Array.isArray(shape)) throw new EplbFormatError(file, `${what} is not a list of sizes`);
  if (shape.length > MAX_DIMS) {
    throw new EplbFormatError(file, `${what} has ${shape.length} dimensions (at most ${MAX_DIMS})`);
  }
  let numel = 1;
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isSafeInteger(d) || d < 0) {
      throw new EplbFormatError(file, `${what} has an invalid size ${String(d).slice(0, 30)}`);
    }
    numel *= d;
  }
  // A zero dimension makes the product 0 even if another dimension is absurd; that is harmless.
  if (numel > cap) {
    throw new EplbFormatError(
      file,
      `${what} [${shape.join(", ")}] has ${numel} elements, more than the ${cap} eplb reads whole`,
    );
  }
  if (numel > limit) {
    throw new EplbFormatError(
      file,
      `${what} [${shape.join(", ")}] has ${numel} elements, more than the file can hold (${limit})`,
    );
  }
  return numel;
}

let halfTable: Float64Array | undefined;

/** float16 bit pattern -> value, built once (64 Ki entries) so decoding is one lookup each. */
function float16Table(): Float64Array {
  if (halfTable) return halfTable;
  const t = new Float64Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = t;
  return t;
}

/**
 * Decodes `count` elements of `dtype` from `bytes` (which must hold at least
 * `count * DTYPE_SIZE[dtype]` bytes) into `out` (a new Float64Array unless given, so a
 * streaming reader can reuse one buffer per step). Native-endian aligned data goes
 * through a typed-array view and a bulk `set`; anything else through a DataView. 64-bit integers
 * outside +-2^53 are refused because a float64 would silently round them.
 *
 * @example
 * ```ts
 * decodeElements(new Uint8Array([1, 0, 0, 0, 2, 0, 0, 0]), "int32", true, 2, "x.npy");
 * // Float64Array [1, 2]
 * ```
 */
export function decodeElements(
  bytes: Uint8Array,
  dtype: DType,
  littleEndian: boolean,
  count: number,
  file: string,
  out: Float64Array = new Float64Array(count),
): Float64Array {
  const size = DTYPE_SIZE[dtype];
  const nbytes = count * size;
  if (bytes.length < nbytes) {
    throw new EplbFormatError(
      file,
      `truncated data: ${count} ${dtype} elements need ${nbytes} bytes, ${bytes.length} present`,
    );
  }
  if (count === 0) return out;
  if (size === 1) {
    if (dtype === "int8") out.set(new Int8Array(bytes.buffer, bytes.byteOffset, count));
    else if (dtype === "uint8") out.set(bytes.subarray(0, count));
    else for (let i = 0; i < count; i++) out[i] = bytes[i] === 0 ? 0 : 1;
    return out;
  }
  if (littleEndian === LITTLE_ENDIAN_HOST) {
    // Typed-array views need an aligned byte offset; copy (one memcpy) when the file is not.
    // Not `bytes.slice`: on a Buffer (what readFileSync returns) that is a view, still unaligned.
    let src = bytes;
    if (bytes.byteOffset % size !== 0) src = copyBytes(bytes.subarray(0, nbytes));
    decodeNative(src, dtype, count, out, file);
  } else {
    decodeSwapped(bytes, dtype, littleEndian, count, out, file);
  }
  return out;
}

function decodeNative(
  src: Uint8Array,
  dtype: DType,
  count: number,
  out: Float64Array,
  file: string,
): void {
  const { buffer, byteOffset } = src;
  switch (dtype) {
    case "int16":
      out.set(new Int16Array(buffer, byteOffset, count));
      return;
    case "uint16":
      out.set(new Uint16Array(buffer, byteOffset, count));
      return;
    case "int32":
      out.set(new Int32Array(buffer, byteOffset, count));
      return;
    case "uint32":
      out.set(new Uint32Array(buffer, byteOffset, count));
      return;
    case "float32":
      out.set(new Float32Array(buffer, byteOffset, count));
      return;
    case "float64":
      out.set(new Float64Array(buffer, byteOffset, count));
      return;
    case "float16": {
      const t = float16Table();
      const h = new Uint16Array(buffer, byteOffset, count);
      for (let i = 0; i < count; i++) out[i] = t[h[i]];
      return;
    }
    case "bfloat16": {
      // bfloat16 is the top half of a float32: widen through one scratch word, no allocation.
      const h = new Uint16Array(buffer, byteOffset, count);
      const word = new Uint32Array(1);
      const asFloat = new Float32Array(word.buffer);
      for (let i = 0; i < count; i++) {
        word[0] = h[i] << 16;
        out[i] = asFloat[0];
      }
      return;
    }
    case "int64":
    case "uint64": {
      // Two 32-bit halves are exact and much faster than BigInt64Array + Number().
      const w = new Int32Array(buffer, byteOffset, count * 2);
      const signed = dtype === "int64";
      const loIndex = LITTLE_ENDIAN_HOST ? 0 : 1;
      for (let i = 0; i < count; i++) {
        const lo = w[2 * i + loIndex] >>> 0;
        const hi = w[2 * i + 1 - loIndex];
        if (signed ? hi > 0x1fffff || hi < -0x200000 : hi < 0 || hi > 0x1fffff) {
          throw int64TooLarge(file, i);
        }
        out[i] = (signed ? hi : hi >>> 0) * 4294967296 + lo;
      }
      return;
    }
    default:
      throw new EplbFormatError(file, `cannot decode dtype ${dtype}`);
  }
}

function decodeSwapped(
  bytes: Uint8Array,
  dtype: DType,
  le: boolean,
  count: number,
  out: Float64Array,
  file: string,
): void {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "int16":
      for (let i = 0; i < count; i++) out[i] = v.getInt16(2 * i, le);
      return;
    case "uint16":
      for (let i = 0; i < count; i++) out[i] = v.getUint16(2 * i, le);
      return;
    case "int32":
      for (let i = 0; i < count; i++) out[i] = v.getInt32(4 * i, le);
      return;
    case "uint32":
      for (let i = 0; i < count; i++) out[i] = v.getUint32(4 * i, le);
      return;
    case "float32":
      for (let i = 0; i < count; i++) out[i] = v.getFloat32(4 * i, le);
      return;
    case "float64":
      for (let i = 0; i < count; i++) out[i] = v.getFloat64(8 * i, le);
      return;
    case "float16": {
      const t = float16Table();
      for (let i = 0; i < count; i++) out[i] = t[v.getUint16(2 * i, le)];
      return;
    }
    case "bfloat16": {
      const word = new Uint32Array(1);
      const asFloat = new Float32Array(word.buffer);
      for (let i = 0; i < count; i++) {
        word[0] = v.getUint16(2 * i, le) << 16;
        out[i] = asFloat[0];
      }
      return;
    }
    case "int64":
    case "uint64": {
      const signed = dtype === "int64";
      for (let i = 0; i < count; i++) {
        const lo = v.getUint32(8 * i + (le ? 0 : 4), le);
        const hi = signed
          ? v.getInt32(8 * i + (le ? 4 : 0), le)
          : v.getUint32(8 * i + (le ? 4 : 0), le);
        if (hi > 0x1fffff || hi < -0x200000 || (!signed && hi < 0)) throw int64TooLarge(file, i);
        out[i] = hi * 4294967296 + lo;
      }
      return;
    }
    default:
      throw new EplbFormatError(file, `cannot decode dtype ${dtype}`);
  }
}

function int64TooLarge(file: string, index: number): EplbFormatError {
  return new EplbFormatError(
    file,
    `64-bit integer at element ${index} is beyond +-2^53 and cannot be represented exactly`,
  );
}

/**
 * Copies the strided view `(offset, shape, strides)` of `src` (strides in elements) into a new
 * contiguous row-major array. Callers check bounds first with {@link stridedSpan}. An odometer
 * walks the outer dimensions and a tight loop the last one, so nothing is allocated per element.
 *
 * @example
 * ```ts
 * // the transpose of a 2x3 row-major matrix
 * gatherStrided(new Float64Array([1, 2, 3, 4, 5, 6]), 0, [3, 2], [1, 3]);
 * // Float64Array [1, 4, 2, 5, 3, 6]
 * ```
 */
export function gatherStrided(
  src: Float64Array,
  offset: number,
  shape: readonly number[],
  strides: readonly number[],
): Float64Array {
  let numel = 1;
  for (const d of shape) numel *= d;
  const out = new Float64Array(numel);
  if (numel === 0) return out;
  const nd = shape.length;
  if (nd === 0) {
    out[0] = src[offset];
    return out;
  }
  const inner = shape[nd - 1];
  const innerStride = strides[nd - 1];
  const index = new Array<number>(nd).fill(0);
  let base = offset;
  let o = 0;
  while (o < numel) {
    if (innerStride === 1) {
      out.set(src.subarray(base, base + inner), o);
      o += inner;
    } else {
      for (let k = 0, s = base; k < inner; k++, s += innerStride) out[o++] = src[s];
    }
    // Advance the odometer over dimensions nd-2 .. 0.
    let d = nd - 2;
    while (d >= 0) {
      index[d]++;
      base += strides[d];
      if (index[d] < shape[d]) break;
      base -= strides[d] * shape[d];
      index[d] = 0;
      d--;
    }
    if (d < 0) break;
  }
  return out;
}

/**
 * The smallest and largest element index a strided view touches, or `null` for an empty view.
 * Used to check a view against its storage before reading anything.
 *
 * @example
 * ```ts
 * stridedSpan(2, [3, 4], [4, 1]); // { min: 2, max: 13 }
 * ```
 */
export function stridedSpan(
  offset: number,
  shape: readonly number[],
  strides: readonly number[],
): { min: number; max: number } | null {
  let min = offset;
  let max = offset;
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 0) return null;
    const reach = (shape[d] - 1) * strides[d];
    if (reach < 0) min += reach;
    else max += reach;
  }
  return { min, max };
}

/**
 * Row-major strides (in elements) of a contiguous array of `shape`.
 *
 * @example
 * ```ts
 * contiguousStrides([16, 4, 16]); // [64, 16, 1]
 * ```
 */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = s;
    s *= shape[d];
  }
  return strides;
}

/**
 * Converts nested arrays of numbers (JSON, pickled lists), possibly ending in tensors (a pickled
 * list of per-layer tensors), into one row-major {@link Tensor}. The shape comes from the first
 * element at each depth and every other element must match it (no ragged rows). `limit` bounds
 * the element count, because shared sub-lists in a pickle can describe far more elements than
 * the file has bytes.
 *
 * @example
 * ```ts
 * nestedToTensor([[1, 2], [3, 4]], 1e6, "x.json", "weight");
 * // { dtype: "float64", shape: [2, 2], data: Float64Array [1, 2, 3, 4] }
 * ```
 */
export function nestedToTensor(value: unknown, limit: number, file: string, what: string): Tensor {
  const shape: number[] = [];
  let leafShape: number[] = [];
  let leafDtype: DType = "float64";
  let probe: unknown = value;
  while (Array.isArray(probe)) {
    if (shape.length >= MAX_DIMS) {
      throw new EplbFormatError(file, `${what} is nested deeper than ${MAX_DIMS} levels`);
    }
    shape.push(probe.length);
    if (probe.length === 0) break;
    probe = probe[0];
  }
  if (isTensor(probe)) {
    leafShape = probe.shape;
    leafDtype = probe.dtype;
  }
  const fullShape = shape.concat(leafShape);
  const numel = checkedNumel(fullShape, limit, file, `${what} shape`);
  // With a zero-length innermost list the element count is 0 while the lists to visit can still
  // be astronomically many (shared sub-lists), so bound the list count as well.
  let lists = 1;
  for (let d = 0; d < shape.length - 1 && shape[d] > 0; d++) {
    lists *= shape[d];
    if (lists > limit) {
      throw new EplbFormatError(file, `${what} has more nested lists than the file can hold`);
    }
  }
  const data = new Float64Array(numel);
  const leafSize = leafShape.reduce((a, b) => a * b, 1);
  let o = 0;
  // Depth-first with an explicit stack of (array, next index): no recursion, bounded by numel.
  const arrays: unknown[][] = [];
  const next: number[] = [];
  const path: number[] = [];
  if (shape.length === 0) {
    if (typeof value === "number") data[0] = value;
    else if (isTensor(value)) data.set(value.data);
    else throw new EplbFormatError(file, `${what} is not a number or an array`);
    return { dtype: leafShape.length ? leafDtype : "float64", shape: fullShape, data };
  }
  arrays.push(value as unknown[]);
  next.push(0);
  while (arrays.length > 0) {
    const depth = arrays.length - 1;
    const arr = arrays[depth];
    if (next[depth] === 0 && arr.length !== shape[depth]) {
      throw new EplbFormatError(
        file,
        `${what}${indexText(path)} has length ${arr.length}, expected ${shape[depth]} (ragged array)`,
      );
    }
    const i = next[depth];
    if (i >= arr.length) {
      arrays.pop();
      next.pop();
      path.pop();
      continue;
    }
    next[depth] = i + 1;
    const item = arr[i];
    if (depth < shape.length - 1) {
      if (!Array.isArray(item)) {
        throw new EplbFormatError(file, `${what}${indexText(path)}[${i}] is not an array`);
      }
      arrays.push(item);
      next.push(0);
      path.push(i);
      continue;
    }
    if (leafShape.length === 0) {
      if (typeof item !== "number") {
        throw new EplbFormatError(
          file,
          `${what}${indexText(path)}[${i}] is ${describe(item)}, not a number`,
        );
      }
      data[o++] = item;
    } else {
      if (!isTensor(item) || !sameShape(item.shape, leafShape)) {
        throw new EplbFormatError(
          file,
          `${what}${indexText(path)}[${i}] is not a tensor of shape [${leafShape.join(", ")}]`,
        );
      }
      data.set(item.data, o);
      o += leafSize;
    }
  }
  return { dtype: leafShape.length ? leafDtype : "float64", shape: fullShape, data };
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function indexText(path: readonly number[]): string {
  let s = "";
  for (const i of path) s += `[${i}]`;
  return s;
}

/**
 * One-word description of a value for messages ("a string", "null", "an object").
 *
 * @example
 * ```ts
 * describe(null); // "null"
 * ```
 */
export function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (isTensor(value)) return `a ${value.shape.length}-D tensor`;
  if (value instanceof Uint8Array) return "bytes";
  switch (typeof value) {
    case "string":
      return "a string";
    case "boolean":
      return `a boolean (${value})`;
    case "bigint":
      return "an integer beyond 2^53";
    case "undefined":
      return "missing";
    case "number":
      return `the number ${value}`;
    default:
      return "an object";
  }
}
