/**
 * Test-only writers for the formats the readers parse (pickle opcodes, torch zip archives,
 * `.npy`, safetensors), so tests can build exact byte layouts (storage offsets, strides, ZIP64,
 * hostile globals) without Python, plus the location of the shared fixtures.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as zlib from "node:zlib";
import { EplbFormatError } from "../../src/io/errors.js";
import type { DType } from "../../src/io/tensor.js";

/**
 * `../shared/fixtures` beside the repository. Tests run from the repo root (npm test), and the
 * compiled file sits in `dist/test/io/`, so both anchors are tried; EPLB_FIXTURES overrides.
 */
export function fixturesDir(): string {
  const candidates = [
    process.env.EPLB_FIXTURES,
    join(process.cwd(), "..", "shared", "fixtures"),
    fileURLToPath(new URL("../../../../shared/fixtures/", import.meta.url)),
  ];
  for (const c of candidates) {
    if (c && existsSync(join(c, "hotness.json"))) return c;
  }
  throw new Error(
    `shared fixtures not found (looked in ${candidates.filter(Boolean).join(", ")}); ` +
      "CI keeps ../shared beside the clone, or set EPLB_FIXTURES",
  );
}

/** Every fixture file name, with what it is. */
export const FIXTURES = [
  "hotness-float32.npy",
  "hotness-float64-fortran.npy",
  "hotness-int64.npy",
  "hotness.json",
  "loads-2d-float64.npy",
  "sglang-init-logical-count.json",
  "sglang-init-logical-count.pt",
  "sglang-init-p2l.pt",
  "sglang-stat-dump-int32.pt",
  "sglang-stat-dump-int64.pt",
] as const;

// ---------------------------------------------------------------------------------------------
// Element encoding

const SIZES: Record<DType, number> = {
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

/** float -> IEEE half bits, exact for the values tests use (normal halves, zero, subnormals). */
export function halfBits(x: number): number {
  if (x === 0) return Object.is(x, -0) ? 0x8000 : 0;
  if (Number.isNaN(x)) return 0x7e00;
  const sign = x < 0 ? 0x8000 : 0;
  let a = Math.abs(x);
  if (a === Number.POSITIVE_INFINITY) return sign | 0x7c00;
  let exp = Math.floor(Math.log2(a));
  if (exp < -14) return sign | Math.round(a / 2 ** -24);
  a = a / 2 ** exp - 1;
  if (a >= 1) {
    exp++;
    a = a / 2;
  }
  return sign | ((exp + 15) << 10) | Math.round(a * 1024);
}

/** Encodes values of `dtype` in the given byte order. */
export function encode(dtype: DType, values: readonly number[], littleEndian = true): Uint8Array {
  const size = SIZES[dtype];
  const out = new Uint8Array(values.length * size);
  const v = new DataView(out.buffer);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  values.forEach((x, i) => {
    const o = i * size;
    switch (dtype) {
      case "bool":
      case "uint8":
        v.setUint8(o, x);
        break;
      case "int8":
        v.setInt8(o, x);
        break;
      case "int16":
        v.setInt16(o, x, littleEndian);
        break;
      case "uint16":
        v.setUint16(o, x, littleEndian);
        break;
      case "int32":
        v.setInt32(o, x, littleEndian);
        break;
      case "uint32":
        v.setUint32(o, x, littleEndian);
        break;
      case "int64":
        v.setBigInt64(o, BigInt(x), littleEndian);
        break;
      case "uint64":
        v.setBigUint64(o, BigInt(x), littleEndian);
        break;
      case "float16":
        v.setUint16(o, halfBits(x), littleEndian);
        break;
      case "bfloat16":
        f32[0] = x;
        v.setUint16(o, u32[0] >>> 16, littleEndian);
        break;
      case "float32":
        v.setFloat32(o, x, littleEndian);
        break;
      case "float64":
        v.setFloat64(o, x, littleEndian);
        break;
    }
  });
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const utf8 = new TextEncoder();

let crcTable: Uint32Array | undefined;
/** CRC-32 (zlib.crc32 exists from Node 20.15; the bitwise table keeps older 20.x working). */
function crc32(data: Uint8Array): number {
  const native = (zlib as { crc32?: (d: Uint8Array) => number }).crc32;
  if (native) return native(data) >>> 0;
  if (!crcTable) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let c = 0xffffffff;
  for (let i = 0; i < data.length; i++) c = crcTable[(c ^ data[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// ---------------------------------------------------------------------------------------------
// .npy

/**
 * A `.npy` file: `descr` as numpy spells it, values given in row-major order (written
 * column-major when `fortran`), header padded so data starts on a 64-byte boundary.
 */
export function npyBytes(
  descr: string,
  shape: readonly number[],
  values: readonly number[],
  options: { fortran?: boolean; version?: 1 | 2 | 3; header?: string } = {},
): Uint8Array {
  const version = options.version ?? 1;
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(", ")})`;
  const dict =
    options.header ??
    `{'descr': '${descr}', 'fortran_order': ${options.fortran ? "True" : "False"}, 'shape': ${shapeText}, }`;
  const prefix = version === 1 ? 10 : 12;
  let text = dict;
  while ((prefix + text.length + 1) % 64 !== 0) text += " ";
  text += "\n";
  const header = utf8.encode(text);
  const pre = new Uint8Array(prefix);
  pre.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]);
  const dv = new DataView(pre.buffer);
  if (version === 1) dv.setUint16(8, header.length, true);
  else dv.setUint32(8, header.length, true);
  const m = /^([<>|=]?)([biuf])(\d+)$/.exec(descr);
  if (!m) throw new Error(`test writer: bad descr ${descr}`);
  const kinds: Record<string, DType> = {
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
  const dtype = kinds[m[2] + m[3]];
  let ordered = values;
  if (options.fortran) ordered = toFortran(values, shape);
  return concat(pre, header, encode(dtype, ordered, m[1] !== ">"));
}

function toFortran(values: readonly number[], shape: readonly number[]): number[] {
  const out = new Array<number>(values.length);
  const n = shape.length;
  const rowStrides = new Array<number>(n);
  const colStrides = new Array<number>(n);
  let r = 1;
  let c = 1;
  for (let d = n - 1; d >= 0; d--) {
    rowStrides[d] = r;
    r *= shape[d];
  }
  for (let d = 0; d < n; d++) {
    colStrides[d] = c;
    c *= shape[d];
  }
  for (let i = 0; i < values.length; i++) {
    let rest = i;
    let o = 0;
    for (let d = 0; d < n; d++) {
      const idx = Math.floor(rest / rowStrides[d]);
      rest -= idx * rowStrides[d];
      o += idx * colStrides[d];
    }
    out[o] = values[i];
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// safetensors

export function safetensorsBytes(
  tensors: { name: string; dtype: string; shape: number[]; data: Uint8Array }[],
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = {
      dtype: t.dtype,
      shape: t.shape,
      data_offsets: [offset, offset + t.data.length],
    };
    offset += t.data.length;
  }
  let json = JSON.stringify(header);
  while (json.length % 8 !== 0) json += " ";
  const len = new Uint8Array(8);
  new DataView(len.buffer).setBigUint64(0, BigInt(json.length), true);
  return concat(len, utf8.encode(json), ...tensors.map((t) => t.data));
}

// ---------------------------------------------------------------------------------------------
// pickle

/** Emits pickle opcodes by name; `bytes()` returns the program. */
export class PickleWriter {
  private readonly out: number[] = [];

  op(...bytes: number[]): this {
    for (const b of bytes) this.out.push(b);
    return this;
  }
  raw(bytes: Uint8Array): this {
    for (const b of bytes) this.out.push(b);
    return this;
  }
  proto(v = 2): this {
    return this.op(0x80, v);
  }
  stop(): this {
    return this.op(0x2e);
  }
  mark(): this {
    return this.op(0x28);
  }
  none(): this {
    return this.op(0x4e);
  }
  bool(v: boolean): this {
    return this.op(v ? 0x88 : 0x89);
  }
  emptyDict(): this {
    return this.op(0x7d);
  }
  emptyList(): this {
    return this.op(0x5d);
  }
  emptyTuple(): this {
    return this.op(0x29);
  }
  tuple(): this {
    return this.op(0x74);
  }
  tupleN(n: 1 | 2 | 3): this {
    return this.op(0x84 + n);
  }
  setitem(): this {
    return this.op(0x73);
  }
  setitems(): this {
    return this.op(0x75);
  }
  append(): this {
    return this.op(0x61);
  }
  appends(): this {
    return this.op(0x65);
  }
  reduce(): this {
    return this.op(0x52);
  }
  build(): this {
    return this.op(0x62);
  }
  persid(): this {
    return this.op(0x51);
  }
  put(i: number): this {
    return i < 256 ? this.op(0x71, i) : this.op(0x72, ...le32(i));
  }
  get(i: number): this {
    return i < 256 ? this.op(0x68, i) : this.op(0x6a, ...le32(i));
  }
  memoize(): this {
    return this.op(0x94);
  }
  str(s: string, short = false): this {
    const b = utf8.encode(s);
    if (short && b.length < 256) return this.op(0x8c, b.length).raw(b);
    return this.op(0x58, ...le32(b.length)).raw(b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.op(0x4b, n);
    if (n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (n >= -0x80000000 && n <= 0x7fffffff) return this.op(0x4a, ...le32(n));
    return this.long(BigInt(n));
  }
  long(n: bigint): this {
    const bytes: number[] = [];
    let v = n;
    // Two's complement, little-endian, as short as Python writes it.
    for (;;) {
      const b = Number(v & 0xffn);
      bytes.push(b);
      v >>= 8n;
      if ((v === 0n && (b & 0x80) === 0) || (v === -1n && (b & 0x80) !== 0)) break;
    }
    return this.op(0x8a, bytes.length, ...bytes);
  }
  float(x: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, x, false);
    return this.op(0x47).raw(b);
  }
  global(module: string, name: string): this {
    return this.op(0x63).raw(utf8.encode(`${module}\n${name}\n`));
  }
  stackGlobal(module: string, name: string): this {
    return this.str(module, true).str(name, true).op(0x93);
  }
  ints(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.out);
  }
}

function le32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/**
 * Writes `_rebuild_tensor_v2(('storage', torch.<storageClass>, key, 'cpu', numel), offset, size,
 * stride, False, OrderedDict())` as torch does (protocol 2), leaving the tensor on the stack.
 */
export function pickleTensor(
  w: PickleWriter,
  t: {
    storageClass: string;
    key: string;
    numel: number;
    offset: number;
    size: number[];
    stride: number[];
  },
): PickleWriter {
  w.global("torch._utils", "_rebuild_tensor_v2");
  w.mark();
  w.mark()
    .str("storage")
    .global("torch", t.storageClass)
    .str(t.key)
    .str("cpu")
    .int(t.numel)
    .tuple();
  w.persid();
  w.int(t.offset).ints(t.size).ints(t.stride).bool(false);
  w.global("collections", "OrderedDict").emptyTuple().reduce();
  w.tuple().reduce();
  return w;
}

// ---------------------------------------------------------------------------------------------
// zip / torch.save

export interface ZipInput {
  name: string;
  data: Uint8Array;
  /** 0 stored (default), 8 deflate. */
  method?: 0 | 8;
  /** A prebuilt deflate body and the size it declares (bombs built cheaply; CRC 0). */
  deflated?: { body: Uint8Array; size: number };
}

/**
 * A ZIP archive. `torchStyle` reproduces what torch writes: local headers with zero sizes and
 * the data-descriptor flag, an `FB` extra field padding data to 64 bytes, and ZIP64 end records
 * beside the classic one. `zip64Only` maxes the classic end record so readers must use ZIP64.
 */
export function zipBytes(
  entries: ZipInput[],
  options: { torchStyle?: boolean; zip64Only?: boolean; zip64Entries?: boolean } = {},
): Uint8Array {
  const parts: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const e of entries) {
    const name = utf8.encode(e.name);
    const method = e.method ?? 0;
    const deflate = () => (method === 8 ? new Uint8Array(zlib.deflateRawSync(e.data)) : e.data);
    const body = e.deflated ? e.deflated.body : deflate();
    const crc = e.deflated ? 0 : crc32(e.data);
    const size = e.deflated ? e.deflated.size : e.data.length;
    const flags = options.torchStyle ? 0x0808 : 0x0800;
    let extra = new Uint8Array(0);
    if (options.torchStyle) {
      const pad = (64 - ((offset + 30 + name.length + 4) % 64)) % 64;
      extra = new Uint8Array(4 + pad);
      extra.set([0x46, 0x42, pad & 0xff, pad >> 8]);
      extra.fill(0x5a, 4);
    }
    const local = new Uint8Array(30);
    const lv = new DataView(local.buffer);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint16(6, flags, true);
    lv.setUint16(8, method, true);
    if (!options.torchStyle) {
      lv.setUint32(14, crc, true);
      lv.setUint32(18, body.length, true);
      lv.setUint32(22, size, true);
    }
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, extra.length, true);
    const localOffset = offset;
    parts.push(local, name, extra, body);
    offset += 30 + name.length + extra.length + body.length;
    if (options.torchStyle) {
      const dd = new Uint8Array(16);
      const dv = new DataView(dd.buffer);
      dv.setUint32(0, 0x08074b50, true);
      dv.setUint32(4, crc, true);
      dv.setUint32(8, body.length, true);
      dv.setUint32(12, size, true);
      parts.push(dd);
      offset += 16;
    }
    let cextra = new Uint8Array(0);
    if (options.zip64Entries) {
      cextra = new Uint8Array(4 + 24);
      const xv = new DataView(cextra.buffer);
      xv.setUint16(0, 1, true);
      xv.setUint16(2, 24, true);
      xv.setBigUint64(4, BigInt(size), true);
      xv.setBigUint64(12, BigInt(body.length), true);
      xv.setBigUint64(20, BigInt(localOffset), true);
    }
    const c = new Uint8Array(46);
    const cv = new DataView(c.buffer);
    cv.setUint32(0, 0x02014b50, true);
    cv.setUint16(4, 0x031e, true);
    cv.setUint16(6, 20, true);
    cv.setUint16(8, flags, true);
    cv.setUint16(10, method, true);
    cv.setUint32(16, crc, true);
    cv.setUint32(20, options.zip64Entries ? 0xffffffff : body.length, true);
    cv.setUint32(24, options.zip64Entries ? 0xffffffff : size, true);
    cv.setUint16(28, name.length, true);
    cv.setUint16(30, cextra.length, true);
    cv.setUint32(42, options.zip64Entries ? 0xffffffff : localOffset, true);
    central.push(concat(c, name, cextra));
  }
  const cd = concat(...central);
  const cdOffset = offset;
  const tail: Uint8Array[] = [cd];
  const zip64 = options.torchStyle || options.zip64Only;
  const recordOffset = cdOffset + cd.length;
  if (zip64) {
    const rec = new Uint8Array(56);
    const rv = new DataView(rec.buffer);
    rv.setUint32(0, 0x06064b50, true);
    rv.setBigUint64(4, 44n, true);
    rv.setUint16(12, 0x031e, true);
    rv.setUint16(14, 45, true);
    rv.setBigUint64(24, BigInt(entries.length), true);
    rv.setBigUint64(32, BigInt(entries.length), true);
    rv.setBigUint64(40, BigInt(cd.length), true);
    rv.setBigUint64(48, BigInt(cdOffset), true);
    const loc = new Uint8Array(20);
    const lv = new DataView(loc.buffer);
    lv.setUint32(0, 0x07064b50, true);
    lv.setBigUint64(8, BigInt(recordOffset), true);
    lv.setUint32(16, 1, true);
    tail.push(rec, loc);
  }
  const end = new Uint8Array(22);
  const ev = new DataView(end.buffer);
  ev.setUint32(0, 0x06054b50, true);
  const max = options.zip64Only;
  ev.setUint16(8, max ? 0xffff : entries.length, true);
  ev.setUint16(10, max ? 0xffff : entries.length, true);
  ev.setUint32(12, max ? 0xffffffff : cd.length, true);
  ev.setUint32(16, max ? 0xffffffff : cdOffset, true);
  tail.push(end);
  return concat(...parts, ...tail);
}

/** A ZIP's local entries walked from the start, as a reader that ignores the directory would. */
export function localEntries(bytes: Uint8Array) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: { name: string; method: number; crc: number; size: number; dataAt: number }[] = [];
  let p = 0;
  while (v.getUint32(p, true) === 0x04034b50) {
    const method = v.getUint16(p + 8, true);
    const crc = v.getUint32(p + 14, true);
    const size = v.getUint32(p + 18, true);
    assert.equal(v.getUint32(p + 22, true), size, "stored: compressed size = size");
    const nameLen = v.getUint16(p + 26, true);
    const extraLen = v.getUint16(p + 28, true);
    const name = new TextDecoder().decode(bytes.subarray(p + 30, p + 30 + nameLen));
    const dataAt = p + 30 + nameLen + extraLen;
    out.push({ name, method, crc, size, dataAt });
    p = dataAt + size;
  }
  return { entries: out, centralAt: p };
}

/**
 * A `torch.save`-shaped archive: `<name>/data.pkl`, `<name>/data/<key>` storages,
 * `<name>/version`, and `<name>/byteorder` when given.
 */
export function torchBytes(
  pickle: Uint8Array,
  storages: Record<string, Uint8Array>,
  options: { name?: string; byteorder?: string; deflate?: boolean; zip64Only?: boolean } = {},
): Uint8Array {
  const name = options.name ?? "archive";
  const entries: ZipInput[] = [
    { name: `${name}/data.pkl`, data: pickle, method: options.deflate ? 8 : 0 },
  ];
  if (options.byteorder !== undefined) {
    entries.push({ name: `${name}/byteorder`, data: utf8.encode(options.byteorder) });
  }
  for (const [key, data] of Object.entries(storages)) {
    entries.push({ name: `${name}/data/${key}`, data, method: options.deflate ? 8 : 0 });
  }
  entries.push({ name: `${name}/version`, data: utf8.encode("3\n") });
  return zipBytes(entries, { torchStyle: !options.deflate, zip64Only: options.zip64Only });
}

/**
 * The simplest torch.save file holding `{key: tensor}`: one storage `0` with `values`, viewed
 * through `offset`, `size` and `stride`.
 */
export function torchDictOfTensor(
  key: string,
  storageClass: string,
  storage: Uint8Array,
  numel: number,
  view: { offset: number; size: number[]; stride: number[] },
  options: { byteorder?: string; deflate?: boolean } = {},
): Uint8Array {
  const w = new PickleWriter().proto(2).emptyDict().put(0).str(key).put(1);
  pickleTensor(w, { storageClass, key: "0", numel, ...view });
  w.setitem().stop();
  return torchBytes(w.bytes(), { "0": storage }, options);
}

/** Deterministic PRNG for fuzzing (mulberry32), independent of the code under test. */
export class Prng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

/** An assert.throws validator: an EplbFormatError of one line matching `pattern`. */
export const formatError = (pattern: RegExp) => (e: unknown) =>
  e instanceof EplbFormatError && pattern.test(e.message) && !e.message.includes("\n");
