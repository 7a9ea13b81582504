import { EplbInputError } from "../core/model/errors.js";
import { writeStoredZip } from "./zip-write.js";

/** An int64 tensor to save: its shape and its elements in row-major order. */
export interface Int64TensorInput {
  readonly shape: readonly number[];
  readonly data: ArrayLike<number>;
}

/** Pickle protocol 2 opcodes used below. */
const OP = {
  PROTO: 0x80,
  EMPTY_DICT: 0x7d,
  MARK: 0x28,
  SETITEM: 0x73,
  SETITEMS: 0x75,
  BINUNICODE: 0x58,
  GLOBAL: 0x63,
  BININT1: 0x4b,
  BININT2: 0x4d,
  BININT: 0x4a,
  TUPLE: 0x74,
  EMPTY_TUPLE: 0x29,
  BINPERSID: 0x51,
  NEWFALSE: 0x89,
  REDUCE: 0x52,
  STOP: 0x2e,
} as const;

/** Appends pickle opcodes; only the handful `torch.save` of a dict of tensors needs. */
class PickleWriter {
  private readonly bytes: number[] = [];

  op(code: number): this {
    this.bytes.push(code);
    return this;
  }

  str(s: string): this {
    const utf8 = new TextEncoder().encode(s);
    this.bytes.push(OP.BINUNICODE, ...u32(utf8.length), ...utf8);
    return this;
  }

  global(module: string, name: string): this {
    this.bytes.push(OP.GLOBAL, ...new TextEncoder().encode(`${module}\n${name}\n`));
    return this;
  }

  int(n: number): this {
    if (n >= 0 && n < 0x100) this.bytes.push(OP.BININT1, n);
    else if (n >= 0 && n < 0x10000) this.bytes.push(OP.BININT2, n & 0xff, n >>> 8);
    else if (n >= -0x80000000 && n <= 0x7fffffff) this.bytes.push(OP.BININT, ...u32(n));
    else throw new RangeError(`${n} does not fit a pickle BININT`);
    return this;
  }

  tuple(items: readonly number[]): this {
    if (items.length === 0) return this.op(OP.EMPTY_TUPLE);
    this.op(OP.MARK);
    for (const v of items) this.int(v);
    return this.op(OP.TUPLE);
  }

  done(): Uint8Array {
    return Uint8Array.from(this.bytes);
  }
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}

/**
 * The bytes of `torch.save({name: tensor, ...})` for int64 CPU tensors, in the zip format of
 * torch >= 1.6: `archive/data.pkl` (pickle protocol 2 rebuilding each tensor with
 * `torch._utils._rebuild_tensor_v2` over a persistent-id storage
 * `('storage', torch.LongStorage, key, 'cpu', numel)`), `archive/byteorder` (`little`),
 * `archive/data/<key>` (little-endian int64, 64-byte aligned) and `archive/version` (`3`).
 * `torch.load(path, weights_only=True)` accepts it (only allow-listed globals are named).
 *
 * @param tensors the dict to save, in key order; every element an integer in the int64 range
 *   that a float64 holds exactly
 * @returns the file's bytes
 * @throws EplbInputError when a shape does not match its data or an element is not a safe integer
 * @example
 * ```ts
 * const bytes = torchSaveInt64({ physical_to_logical_map: { shape: [1, 3], data: [0, 1, 0] } });
 * readTorch(bytes, "init.pt"); // { physical_to_logical_map: { dtype: "int64", shape: [1, 3], ... } }
 * ```
 */
export function torchSaveInt64(tensors: Readonly<Record<string, Int64TensorInput>>): Uint8Array {
  const names = Object.keys(tensors);
  const p = new PickleWriter().op(OP.PROTO).op(2).op(OP.EMPTY_DICT);
  if (names.length > 1) p.op(OP.MARK);
  const storages: { name: string; data: Uint8Array }[] = [];
  names.forEach((name, i) => {
    const { shape, data } = tensors[name];
    const numel = shape.reduce((a, b) => a * b, 1);
    if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0) || numel !== data.length) {
      throw new EplbInputError(
        `${name}.shape`,
        `[${shape.join(", ")}]`,
        `must be non-negative integers whose product is the element count (${data.length})`,
      );
    }
    const raw = new Uint8Array(8 * numel);
    const view = new DataView(raw.buffer);
    for (let k = 0; k < numel; k++) {
      const v = data[k];
      if (!Number.isSafeInteger(v)) {
        throw new EplbInputError(`${name}[${k}]`, v, "must be an integer (an int64 element)");
      }
      view.setBigInt64(8 * k, BigInt(v), true);
    }
    const key = String(i);
    storages.push({ name: `archive/data/${key}`, data: raw });
    // C-contiguous strides: the product of the dimensions after each one.
    const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    p.str(name);
    p.global("torch._utils", "_rebuild_tensor_v2");
    p.op(OP.MARK); // the rebuild's argument tuple
    p.op(OP.MARK).str("storage").global("torch", "LongStorage").str(key).str("cpu").int(numel);
    p.op(OP.TUPLE).op(OP.BINPERSID);
    p.int(0).tuple(shape).tuple(stride).op(OP.NEWFALSE);
    p.global("collections", "OrderedDict").op(OP.EMPTY_TUPLE).op(OP.REDUCE);
    p.op(OP.TUPLE).op(OP.REDUCE);
    if (names.length === 1) p.op(OP.SETITEM);
  });
  if (names.length > 1) p.op(OP.SETITEMS);
  p.op(OP.STOP);
  const ascii = (s: string) => new TextEncoder().encode(s);
  return writeStoredZip([
    { name: "archive/data.pkl", data: p.done() },
    { name: "archive/byteorder", data: ascii("little") },
    ...storages,
    { name: "archive/version", data: ascii("3\n") },
  ]);
}
