import { ByteReader, decodeUtf8, oneLine, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import { checkedNumel, DTYPE_SIZE, type DType, decodeElements, type Tensor } from "./tensor.js";

/** safetensors dtype names -> dtype. The float8 and complex types are unsupported. */
const ST_DTYPES: Readonly<Record<string, DType>> = {
  BOOL: "bool",
  U8: "uint8",
  I8: "int8",
  U16: "uint16",
  I16: "int16",
  U32: "uint32",
  I32: "int32",
  U64: "uint64",
  I64: "int64",
  F16: "float16",
  BF16: "bfloat16",
  F32: "float32",
  F64: "float64",
};

/** The safetensors format caps its JSON header at 100 MB; so do we. */
const MAX_HEADER = 100_000_000;

/**
 * True when `bytes` looks like safetensors: an 8-byte little-endian header length that fits in
 * the file, followed by `{`.
 *
 * @example
 * ```ts
 * isSafetensors(readFileSync("stats/rank0.safetensors")); // true (a TensorRT-LLM statistics file)
 * ```
 */
export function isSafetensors(bytes: Uint8Array): boolean {
  if (bytes.length < 10 || bytes[8] !== 0x7b) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lo = v.getUint32(0, true);
  const hi = v.getUint32(4, true);
  return hi === 0 && lo >= 2 && lo <= bytes.length - 8;
}

/** One tensor's entry in the safetensors header. */
interface Entry {
  name: string;
  dtype: DType;
  shape: number[];
  begin: number;
  end: number;
}

/**
 * Reads a safetensors file into its tensors, keyed by name in file order (`__metadata__` is
 * skipped). With `only`, decodes just that tensor (the others are still validated). Every
 * tensor's `data_offsets` must lie inside the data section and match its dtype and shape.
 *
 * @example
 * ```ts
 * const tensors = readSafetensors(readFileSync("stats/rank0.safetensors"), "rank0.safetensors");
 * tensors.get("100_3")?.shape; // [8]: iteration 100, layer 3, 8 experts
 * ```
 */
export function readSafetensors(
  bytes: Uint8Array,
  file: string,
  only?: string,
): Map<string, Tensor> {
  const r = new ByteReader(bytes, file, "safetensors header");
  const headerLen = r.u64();
  if (headerLen > MAX_HEADER) {
    throw new EplbFormatError(
      file,
      `safetensors header of ${headerLen} bytes is over the 100 MB limit`,
    );
  }
  const text = decodeUtf8(r.take(headerLen), file);
  const dataStart = r.pos;
  const dataLen = bytes.length - dataStart;
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    throw new EplbFormatError(
      file,
      `safetensors header is not valid JSON (${oneLine(error instanceof Error ? error.message : String(error), 80)})`,
    );
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new EplbFormatError(file, "safetensors header is not a JSON object");
  }
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    entries.push(parseEntry(name, info, dataLen, file));
  }
  entries.sort((a, b) => a.begin - b.begin);
  if (only !== undefined && !entries.some((e) => e.name === only)) {
    throw new EplbFormatError(
      file,
      `no tensor named ${printable(only)} (has ${
        entries
          .map((e) => e.name)
          .join(", ")
          .slice(0, 200) || "none"
      })`,
    );
  }
  const out = new Map<string, Tensor>();
  for (const e of entries) {
    if (only !== undefined && e.name !== only) continue;
    const numel = e.shape.reduce((a, b) => a * b, 1);
    const data = decodeElements(
      bytes.subarray(dataStart + e.begin, dataStart + e.end),
      e.dtype,
      true,
      numel,
      file,
    );
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}

function parseEntry(name: string, info: unknown, dataLen: number, file: string): Entry {
  const label = `safetensors tensor ${printable(name)}`;
  if (typeof info !== "object" || info === null) {
    throw new EplbFormatError(file, `${label} has no dtype/shape/data_offsets`);
  }
  const { dtype: code, shape, data_offsets: offsets } = info as Record<string, unknown>;
  // hasOwn: a dtype named "constructor" must not find Object's prototype.
  const dtype =
    typeof code === "string" && Object.hasOwn(ST_DTYPES, code) ? ST_DTYPES[code] : undefined;
  if (!dtype) {
    throw new EplbFormatError(file, `${label} has unsupported dtype ${printable(String(code))}`);
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  ) {
    throw new EplbFormatError(file, `${label} has invalid data_offsets`);
  }
  const [begin, end] = offsets as number[];
  if (begin > end || end > dataLen) {
    throw new EplbFormatError(
      file,
      `${label} data_offsets [${begin}, ${end}] are outside the ${dataLen}-byte data section (truncated?)`,
    );
  }
  const size = DTYPE_SIZE[dtype];
  // Compared with the byte range before anything is allocated; the bound only prevents overflow.
  const numel = checkedNumel(
    shape,
    Math.floor(Number.MAX_SAFE_INTEGER / size),
    file,
    `${label} shape`,
  );
  if (numel * size !== end - begin) {
    throw new EplbFormatError(
      file,
      `${label} has ${end - begin} bytes but shape [${(shape as number[]).join(", ")}] of ${code} needs ${numel * size}`,
    );
  }
  return { name, dtype, shape: (shape as number[]).slice(), begin, end };
}
