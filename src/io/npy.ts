import { ByteReader, decodeLatin1, decodeUtf8, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import {
  checkedNumel,
  DTYPE_SIZE,
  type DType,
  decodeElements,
  gatherStrided,
  type Tensor,
} from "./tensor.js";

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"

/** numpy type codes (kind + size) -> dtype. Complex, datetime, strings, objects: unsupported. */
const NPY_DTYPES: Readonly<Record<string, DType>> = {
  b1: "bool",
  i1: "int8",
  u1: "uint8",
  i2: "int16",
  u2: "uint16",
  i4: "int32",
  u4: "uint32",
  i8: "int64",
  u8: "uint64",
  f2: "float16",
  f4: "float32",
  f8: "float64",
};

/**
 * True when `bytes` starts with the `.npy` magic string.
 *
 * @example
 * ```ts
 * isNpy(readFileSync("hotness.npy")); // true
 * ```
 */
export function isNpy(bytes: Uint8Array): boolean {
  return MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Reads a `.npy` file (format versions 1, 2 and 3) into a row-major {@link Tensor}. The header is
 * a Python dict literal (`{'descr': '<i8', 'fortran_order': False, 'shape': (16, 4, 16), }`),
 * parsed here without JSON or eval. Both byte orders, Fortran order (transposed to row-major)
 * and the integer, float and bool dtypes are supported; the data length must match the shape.
 *
 * @example
 * ```ts
 * const t = readNpy(readFileSync("hotness.npy"), "hotness.npy");
 * // { dtype: "float32", shape: [16, 4, 16], data: Float64Array(1024) }
 * ```
 */
export function readNpy(bytes: Uint8Array, file: string): Tensor {
  const header = readNpyHeader(bytes, file);
  const { dtype, littleEndian, shape, fortranOrder, dataOffset } = header;
  const numel = npyNumel(header, bytes.length - dataOffset, file);
  // Read whole: bounded like every other array (a streamed trace is not, see npy-stream.ts).
  checkedNumel(shape, numel, file, "shape");
  const data = decodeElements(bytes.subarray(dataOffset), dtype, littleEndian, numel, file);
  if (!fortranOrder || shape.length < 2) return { dtype, shape, data };
  // Fortran order is column-major: element [i, j, k] is at i + j*a + k*a*b. Gather row-major.
  const strides: number[] = [];
  let s = 1;
  for (const d of shape) {
    strides.push(s);
    s *= d;
  }
  return { dtype, shape, data: gatherStrided(data, 0, shape, strides) };
}

/** What a `.npy` header says: element type and byte order, shape, layout, where data starts. */
export interface NpyHeader {
  readonly dtype: DType;
  /** The dtype as the file spells it (`<i8`), for messages. */
  readonly descr: string;
  readonly littleEndian: boolean;
  readonly shape: number[];
  readonly fortranOrder: boolean;
  /** Byte offset of the first element. */
  readonly dataOffset: number;
}

/**
 * Bytes of a `.npy` file needed to parse its header, from its first 12 bytes (magic, version,
 * header length); the data starts right after them.
 *
 * @example
 * ```ts
 * npyHeaderBytes(readFileSync("hotness.npy").subarray(0, 12), "hotness.npy"); // 128 (version 1)
 * ```
 */
export function npyHeaderBytes(prefix: Uint8Array, file: string): number {
  if (!isNpy(prefix)) throw new EplbFormatError(file, "not a .npy file: wrong magic");
  const r = new ByteReader(prefix, file, ".npy header", 6);
  const major = r.u8();
  const minor = r.u8();
  if (major < 1 || major > 3 || minor !== 0) {
    throw new EplbFormatError(file, `unsupported .npy format version ${major}.${minor}`);
  }
  return major === 1 ? 10 + r.u16() : 12 + r.u32();
}

/**
 * Parses the header of a `.npy` file (format versions 1, 2 and 3) from its first bytes (at least
 * {@link npyHeaderBytes} of them): the dict literal
 * `{'descr': '<i8', 'fortran_order': False, 'shape': (16, 4, 16), }`, without JSON or eval.
 *
 * @example
 * ```ts
 * readNpyHeader(readFileSync("hotness.npy"), "hotness.npy");
 * // { dtype: "float32", descr: "<f4", littleEndian: true, shape: [16, 4, 16], fortranOrder: false,
 * //   dataOffset: 128 }
 * ```
 */
export function readNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  const dataOffset = npyHeaderBytes(bytes.subarray(0, 12), file);
  if (bytes.length < dataOffset) {
    throw new EplbFormatError(file, `truncated .npy header: it needs ${dataOffset} bytes`);
  }
  const raw = bytes.subarray(bytes[6] === 1 ? 10 : 12, dataOffset);
  const text = bytes[6] === 3 ? decodeUtf8(raw, file) : decodeLatin1(raw);
  const header = parseHeader(text, file);
  const { dtype, littleEndian } = parseDescr(header.descr, file);
  const { descr, shape, fortranOrder } = header;
  return { dtype, descr, littleEndian, shape, fortranOrder, dataOffset };
}

/**
 * Elements of the array a `.npy` header describes, checked against the `available` data bytes
 * (a truncated or padded file is an error, before anything is allocated).
 *
 * @example
 * ```ts
 * const bytes = readFileSync("hotness.npy"); // float32 [16, 4, 16]
 * npyNumel(readNpyHeader(bytes, "h.npy"), bytes.length - 128, "h.npy"); // 1024
 * ```
 */
export function npyNumel(header: NpyHeader, available: number, file: string): number {
  const { shape, dtype, descr } = header;
  const size = DTYPE_SIZE[dtype];
  // Nothing is allocated before the byte count is compared, so only overflow needs a bound here.
  const numel = checkedNumel(
    shape,
    Math.floor(Number.MAX_SAFE_INTEGER / size),
    file,
    "shape",
    Number.POSITIVE_INFINITY,
  );
  if (numel * size !== available) {
    throw new EplbFormatError(
      file,
      `${numel * size > available ? "truncated: " : ""}data is ${available} bytes but shape ` +
        `(${shape.join(", ")}) of ${descr} needs ${numel * size}`,
    );
  }
  return numel;
}

interface NpyDict {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

function parseHeader(text: string, file: string): NpyDict {
  const value = new LiteralParser(text, file).parseAll();
  if (!(value instanceof Map)) throw new EplbFormatError(file, ".npy header is not a dict");
  for (const key of value.keys()) {
    if (key !== "descr" && key !== "fortran_order" && key !== "shape") {
      throw new EplbFormatError(
        file,
        `.npy header has an unexpected key ${printable(String(key))}`,
      );
    }
  }
  const descr = value.get("descr");
  const fortran = value.get("fortran_order");
  const shape = value.get("shape");
  if (typeof descr !== "string") {
    throw new EplbFormatError(
      file,
      Array.isArray(descr)
        ? "structured .npy dtypes (record arrays) are not supported"
        : ".npy header 'descr' is missing or not a string",
    );
  }
  if (typeof fortran !== "boolean") {
    throw new EplbFormatError(file, ".npy header 'fortran_order' is missing or not True/False");
  }
  if (!Array.isArray(shape)) {
    throw new EplbFormatError(file, ".npy header 'shape' is missing or not a tuple");
  }
  for (const d of shape) {
    if (typeof d !== "number")
      throw new EplbFormatError(file, ".npy header 'shape' has a non-integer");
  }
  return { descr, fortranOrder: fortran, shape: shape as number[] };
}

function parseDescr(descr: string, file: string): { dtype: DType; littleEndian: boolean } {
  const m = /^([<>|=]?)([biuf]\d+)$/.exec(descr);
  const dtype = m && Object.hasOwn(NPY_DTYPES, m[2]) ? NPY_DTYPES[m[2]] : undefined;
  if (!m || !dtype) {
    throw new EplbFormatError(file, `unsupported .npy dtype ${printable(descr)}`);
  }
  // '=' is native order, and numpy only writes it for this machine; '|' means byte order is moot.
  return { dtype, littleEndian: m[1] !== ">" };
}

/** Sticky: matches only at `lastIndex`, so no slicing per token. */
const LITERAL_TOKEN = /[-+]?\d{1,30}L?|True|False|None/y;

type Literal = string | number | boolean | null | Literal[] | Map<string | number, Literal>;

/**
 * The subset of Python literals numpy writes in headers: dicts, tuples, lists, quoted strings,
 * integers (with Python 2's `L` suffix), True, False, None. Recursion is capped so a hostile
 * header of nested brackets cannot overflow the stack.
 */
class LiteralParser {
  private pos = 0;
  private depth = 0;
  private readonly text: string;
  private readonly file: string;
  constructor(text: string, file: string) {
    this.text = text;
    this.file = file;
  }

  parseAll(): Literal {
    const v = this.value();
    this.skipSpace();
    if (this.pos !== this.text.length) this.fail("unexpected text after the header dict");
    return v;
  }

  private fail(problem: string): never {
    throw new EplbFormatError(this.file, `.npy header: ${problem} at character ${this.pos}`);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length) {
      const c = this.text.charCodeAt(this.pos);
      if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) break;
      this.pos++;
    }
  }

  private value(): Literal {
    this.skipSpace();
    if (this.pos >= this.text.length) this.fail("unexpected end");
    const c = this.text[this.pos];
    if (c === "{" || c === "(" || c === "[") {
      if (++this.depth > 8) this.fail("nested too deeply");
      const v = c === "{" ? this.dict() : this.sequence(c === "(" ? ")" : "]");
      this.depth--;
      return v;
    }
    if (c === "'" || c === '"') return this.string(c);
    LITERAL_TOKEN.lastIndex = this.pos;
    const m = LITERAL_TOKEN.exec(this.text);
    if (!m) this.fail("unexpected character");
    this.pos += m[0].length;
    if (m[0] === "True") return true;
    if (m[0] === "False") return false;
    if (m[0] === "None") return null;
    const n = Number(m[0].replace("L", ""));
    if (!Number.isSafeInteger(n)) this.fail("integer too large");
    return n;
  }

  private string(quote: string): string {
    this.pos++;
    let out = "";
    while (this.pos < this.text.length) {
      const c = this.text[this.pos++];
      if (c === quote) return out;
      if (c === "\\") {
        if (this.pos >= this.text.length) break;
        out += this.text[this.pos++];
      } else {
        out += c;
      }
    }
    return this.fail("unterminated string");
  }

  private dict(): Map<string | number, Literal> {
    this.pos++;
    const out = new Map<string | number, Literal>();
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === "}") {
        this.pos++;
        return out;
      }
      const key = this.value();
      if (typeof key !== "string" && typeof key !== "number") this.fail("dict key is not a string");
      this.skipSpace();
      if (this.text[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      out.set(key, this.value());
      this.skipSpace();
      const c = this.text[this.pos];
      if (c === ",") this.pos++;
      else if (c !== "}") this.fail("expected ',' or '}'");
    }
  }

  private sequence(close: string): Literal[] {
    this.pos++;
    const out: Literal[] = [];
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.value());
      this.skipSpace();
      const c = this.text[this.pos];
      if (c === ",") this.pos++;
      else if (c !== close) this.fail(`expected ',' or '${close}'`);
    }
  }
}
