import { ByteReader, copyBytes, decodeLatin1, decodeUtf8, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";

/**
 * A global (class or function) named by a GLOBAL / STACK_GLOBAL opcode and accepted by the
 * caller's allow-list. It is only a name: the VM never imports or runs anything; REDUCE on it is
 * handed to {@link PickleHooks.call}, which implements the few allowed callables in TypeScript.
 *
 * @example
 * ```ts
 * new PickleGlobal("collections", "OrderedDict").qualifiedName; // "collections.OrderedDict"
 * ```
 */
export class PickleGlobal {
  readonly module: string;
  readonly name: string;
  constructor(module: string, name: string) {
    this.module = module;
    this.name = name;
  }
  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What the caller plugs into {@link unpickle}: the allow-list and the meaning of calls. */
export interface PickleHooks {
  /**
   * Returns the value a GLOBAL stands for, or throws (an {@link EplbFormatError} naming the
   * global) when it is not allowed. Called at the GLOBAL opcode, before any call could happen.
   */
  findGlobal(module: string, name: string): unknown;
  /**
   * `callable(*args)` for REDUCE / NEWOBJ; `callable` is whatever findGlobal returned (or any
   * other stack value, which the hook must refuse). `newDict` makes a dict that later SETITEMS
   * may fill (for `collections.OrderedDict()`).
   */
  call(callable: unknown, args: unknown[], newDict: () => Record<string, unknown>): unknown;
  /** The object a persistent id stands for (torch storages); absent = persistent ids refused. */
  persistentLoad?(pid: unknown): unknown;
}

// Opcodes (pickletools names). Protocol 0/1 text opcodes that torch never writes are refused.
const MARK = 0x28;
const STOP = 0x2e;
const POP = 0x30;
const POP_MARK = 0x31;
const DUP = 0x32;
const BINFLOAT = 0x47;
const BININT = 0x4a;
const BININT1 = 0x4b;
const BININT2 = 0x4d;
const NONE = 0x4e;
const BINPERSID = 0x51;
const REDUCE = 0x52;
const BINSTRING = 0x54;
const SHORT_BINSTRING = 0x55;
const BINUNICODE = 0x58;
const EMPTY_LIST = 0x5d;
const APPEND = 0x61;
const BUILD = 0x62;
const GLOBAL = 0x63;
const DICT = 0x64;
const APPENDS = 0x65;
const BINGET = 0x68;
const LONG_BINGET = 0x6a;
const LIST = 0x6c;
const BINPUT = 0x71;
const LONG_BINPUT = 0x72;
const SETITEM = 0x73;
const TUPLE = 0x74;
const SETITEMS = 0x75;
const EMPTY_DICT = 0x7d;
const EMPTY_TUPLE = 0x29;
const BINBYTES = 0x42;
const SHORT_BINBYTES = 0x43;
const PROTO = 0x80;
const NEWOBJ = 0x81;
const TUPLE1 = 0x85;
const TUPLE2 = 0x86;
const TUPLE3 = 0x87;
const NEWTRUE = 0x88;
const NEWFALSE = 0x89;
const LONG1 = 0x8a;
const LONG4 = 0x8b;
const SHORT_BINUNICODE = 0x8c;
const BINUNICODE8 = 0x8d;
const BINBYTES8 = 0x8e;
const EMPTY_SET = 0x8f;
const ADDITEMS = 0x90;
const FROZENSET = 0x91;
const NEWOBJ_EX = 0x92;
const STACK_GLOBAL = 0x93;
const MEMOIZE = 0x94;
const FRAME = 0x95;

/** Opcodes refused by name, to give a precise message instead of "unknown opcode". */
/** Opcodes that make a container (or call something that may): what MAX_PICKLE_CONTAINERS counts. */
const CONTAINER_OPS = new Set([
  EMPTY_DICT,
  DICT,
  EMPTY_LIST,
  LIST,
  EMPTY_TUPLE,
  TUPLE,
  TUPLE1,
  TUPLE2,
  TUPLE3,
  EMPTY_SET,
  FROZENSET,
  REDUCE,
  NEWOBJ,
  NEWOBJ_EX,
]);

/**
 * Most containers one pickle may make: 2^20. A one-byte opcode makes a dict or a list, each
 * tens of bytes plus bookkeeping, so a 10 MB pickle could otherwise ask for gigabytes; honest
 * ones make a few (tensors live in storages) or one list per row of a nested list.
 */
export const MAX_PICKLE_CONTAINERS = 1 << 20;

const REFUSED: Record<number, string> = {
  105: "INST (instantiates an arbitrary class)",
  111: "OBJ (instantiates an arbitrary class)",
  130: "EXT1 (extension registry)",
  131: "EXT2 (extension registry)",
  132: "EXT4 (extension registry)",
  150: "BYTEARRAY8",
  151: "NEXT_BUFFER (out-of-band buffers)",
  152: "READONLY_BUFFER (out-of-band buffers)",
  73: "INT (protocol 0 text)",
  76: "LONG (protocol 0 text)",
  70: "FLOAT (protocol 0 text)",
  83: "STRING (protocol 0 text)",
  86: "UNICODE (protocol 0 text)",
  80: "PERSID (protocol 0 text)",
  103: "GET (protocol 0 text)",
  112: "PUT (protocol 0 text)",
};

/**
 * Runs a pickle (protocols 2-5 as `torch.save` and `pickle.dump` write them) on a stack machine
 * that can only build data: dicts become plain objects (string keys), lists, tuples and sets
 * become arrays, `bytes` a Uint8Array, ints numbers (bigint beyond 2^53), floats numbers, None
 * null. Globals go through `hooks.findGlobal` (the allow-list) when they are named, so a
 * forbidden one such as `posix.system` is refused before any REDUCE. Each opcode consumes at
 * least one byte, so the loop ends; every length is checked against the input first.
 *
 * @example
 * ```ts
 * // pickle.dumps([1, 2], protocol=2)
 * const pklBytes = new Uint8Array([0x80, 2, 0x5d, 0x28, 0x4b, 1, 0x4b, 2, 0x65, 0x2e]);
 * const value = unpickle(pklBytes, "dump.pt", {
 *   findGlobal: (m, n) => { throw new EplbFormatError("dump.pt", `forbidden global ${m}.${n}`); },
 *   call: () => null,
 * });
 * // value = [1, 2]
 * ```
 */
export function unpickle(bytes: Uint8Array, file: string, hooks: PickleHooks): unknown {
  return unpickleAt(bytes, file, hooks, 0).value;
}

/**
 * {@link unpickle} of the pickle that starts at byte `start`, returning also where it ended (the
 * byte after its STOP): legacy `torch.save` files are several pickles back to back followed by
 * raw storage bytes.
 *
 * @param bytes the whole file
 * @param file file name for messages
 * @param hooks as for {@link unpickle}
 * @param start offset of the pickle's first opcode
 * @throws EplbFormatError as {@link unpickle}
 * @example
 * ```ts
 * // two pickles back to back: 7, then 9
 * const bytes = new Uint8Array([0x80, 2, 0x4b, 7, 0x2e, 0x80, 2, 0x4b, 9, 0x2e]);
 * const hooks = { findGlobal: () => null, call: () => null };
 * const { value: magic, end } = unpickleAt(bytes, "old.pt", hooks, 0); // magic = 7, end = 5
 * const { value: version } = unpickleAt(bytes, "old.pt", hooks, end); // version = 9
 * ```
 */
export function unpickleAt(
  bytes: Uint8Array,
  file: string,
  hooks: PickleHooks,
  start: number,
): { value: unknown; end: number } {
  const r = new ByteReader(bytes, file, "pickle", start);
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  // Which arrays are mutable lists or sets, and which objects are dicts: APPEND/SETITEM on
  // anything else is malformed (Python would raise too).
  const lists = new WeakSet<unknown[]>();
  const sets = new WeakSet<unknown[]>();
  const dicts = new WeakSet<object>();

  const fail = (at: number, problem: string): never => {
    throw new EplbFormatError(file, `pickle opcode at offset ${at}: ${problem}`);
  };
  const pop = (at: number): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1])) {
      fail(at, "stack underflow");
    }
    return stack.pop();
  };
  const top = (at: number): unknown => {
    if (stack.length <= (marks.length > 0 ? marks[marks.length - 1] : 0))
      fail(at, "stack underflow");
    return stack[stack.length - 1];
  };
  const popMark = (at: number): unknown[] => {
    if (marks.length === 0) fail(at, "no MARK on the stack");
    const m = marks.pop()!;
    return stack.splice(m);
  };
  const newDict = (): Record<string, unknown> => {
    const d: Record<string, unknown> = {};
    dicts.add(d);
    return d;
  };
  const setItem = (at: number, dict: unknown, key: unknown, value: unknown): void => {
    if (typeof dict !== "object" || dict === null || !dicts.has(dict)) {
      fail(at, "SETITEM on something that is not a dict");
    }
    // defineProperty so a "__proto__" key is data, never a prototype change.
    Object.defineProperty(dict, dictKey(at, key), {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  };
  const dictKey = (at: number, key: unknown): string => {
    if (typeof key === "string") return key;
    if (typeof key === "number" || typeof key === "bigint") return String(key);
    if (typeof key === "boolean") return key ? "True" : "False";
    if (key === null) return "None";
    return fail(at, "dict key is not a string or a number");
  };
  const appendTo = (at: number, list: unknown, items: unknown[]): void => {
    if (!Array.isArray(list) || !lists.has(list))
      fail(at, "APPEND on something that is not a list");
    const target = list as unknown[];
    for (const item of items) target.push(item);
  };
  const memoKey = (at: number, index: number): unknown => {
    if (!memo.has(index)) fail(at, `memo entry ${index} is not defined`);
    return memo.get(index);
  };

  let containers = 0;
  while (r.pos < r.end) {
    const at = r.pos;
    const op = r.u8();
    if (CONTAINER_OPS.has(op) && ++containers > MAX_PICKLE_CONTAINERS) {
      fail(at, `more than ${MAX_PICKLE_CONTAINERS} lists, tuples, dicts and objects`);
    }
    switch (op) {
      case PROTO: {
        const v = r.u8();
        if (v > 5) fail(at, `unsupported pickle protocol ${v}`);
        break;
      }
      case FRAME: {
        // Frames are an I/O hint; the content is the same opcodes, so only check the length.
        const n = r.u64();
        if (n > r.remaining) fail(at, `FRAME of ${n} bytes but ${r.remaining} left (truncated)`);
        break;
      }
      case STOP: {
        if (marks.length > 0) fail(at, "STOP with an open MARK");
        if (stack.length !== 1) fail(at, `STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: r.pos };
      }
      case MARK:
        marks.push(stack.length);
        break;
      case POP:
        if (marks.length > 0 && stack.length === marks[marks.length - 1]) marks.pop();
        else pop(at);
        break;
      case POP_MARK:
        popMark(at);
        break;
      case DUP:
        stack.push(top(at));
        break;
      case NONE:
        stack.push(null);
        break;
      case NEWTRUE:
        stack.push(true);
        break;
      case NEWFALSE:
        stack.push(false);
        break;
      case BININT:
        stack.push(r.i32());
        break;
      case BININT1:
        stack.push(r.u8());
        break;
      case BININT2:
        stack.push(r.u16());
        break;
      case LONG1:
        stack.push(decodeLong(r.take(r.u8())));
        break;
      case LONG4: {
        const n = r.i32();
        if (n < 0) fail(at, "LONG4 with a negative length");
        if (n > 64) fail(at, `LONG4 integer of ${n} bytes is too large`);
        stack.push(decodeLong(r.take(n)));
        break;
      }
      case BINFLOAT:
        stack.push(r.f64be());
        break;
      case SHORT_BINUNICODE:
        stack.push(decodeUtf8(r.take(r.u8()), file));
        break;
      case BINUNICODE:
        stack.push(decodeUtf8(r.take(r.u32()), file));
        break;
      case BINUNICODE8:
        stack.push(decodeUtf8(r.take(r.u64()), file));
        break;
      case SHORT_BINSTRING:
        stack.push(decodeLatin1(r.take(r.u8())));
        break;
      case BINSTRING: {
        const n = r.i32();
        if (n < 0) fail(at, "BINSTRING with a negative length");
        stack.push(decodeLatin1(r.take(n)));
        break;
      }
      case SHORT_BINBYTES:
        stack.push(copyBytes(r.take(r.u8())));
        break;
      case BINBYTES:
        stack.push(copyBytes(r.take(r.u32())));
        break;
      case BINBYTES8:
        stack.push(copyBytes(r.take(r.u64())));
        break;
      case EMPTY_DICT:
        stack.push(newDict());
        break;
      case DICT: {
        const items = popMark(at);
        if (items.length % 2 !== 0) fail(at, "DICT with an odd number of items");
        const d = newDict();
        for (let i = 0; i < items.length; i += 2) setItem(at, d, items[i], items[i + 1]);
        stack.push(d);
        break;
      }
      case EMPTY_LIST: {
        const l: unknown[] = [];
        lists.add(l);
        stack.push(l);
        break;
      }
      case LIST: {
        const l = popMark(at);
        lists.add(l);
        stack.push(l);
        break;
      }
      case EMPTY_TUPLE:
        stack.push([]);
        break;
      case TUPLE:
        stack.push(popMark(at));
        break;
      case TUPLE1: {
        const a = pop(at);
        stack.push([a]);
        break;
      }
      case TUPLE2: {
        const b = pop(at);
        const a = pop(at);
        stack.push([a, b]);
        break;
      }
      case TUPLE3: {
        const c = pop(at);
        const b = pop(at);
        const a = pop(at);
        stack.push([a, b, c]);
        break;
      }
      case EMPTY_SET: {
        const s: unknown[] = [];
        sets.add(s);
        stack.push(s);
        break;
      }
      case ADDITEMS: {
        const items = popMark(at);
        const s = top(at);
        if (!Array.isArray(s) || !sets.has(s)) fail(at, "ADDITEMS on something that is not a set");
        for (const item of items) (s as unknown[]).push(item);
        break;
      }
      case FROZENSET:
        stack.push(popMark(at));
        break;
      case APPEND: {
        const v = pop(at);
        appendTo(at, top(at), [v]);
        break;
      }
      case APPENDS: {
        const items = popMark(at);
        appendTo(at, top(at), items);
        break;
      }
      case SETITEM: {
        const v = pop(at);
        const k = pop(at);
        setItem(at, top(at), k, v);
        break;
      }
      case SETITEMS: {
        const items = popMark(at);
        if (items.length % 2 !== 0) fail(at, "SETITEMS with an odd number of items");
        const d = top(at);
        for (let i = 0; i < items.length; i += 2) setItem(at, d, items[i], items[i + 1]);
        break;
      }
      case BINPUT:
        memo.set(r.u8(), top(at));
        break;
      case LONG_BINPUT:
        memo.set(r.u32(), top(at));
        break;
      case MEMOIZE:
        memo.set(memo.size, top(at));
        break;
      case BINGET:
        stack.push(memoKey(at, r.u8()));
        break;
      case LONG_BINGET:
        stack.push(memoKey(at, r.u32()));
        break;
      case GLOBAL: {
        const module = readLine(r, at, file);
        const name = readLine(r, at, file);
        stack.push(hooks.findGlobal(module, name));
        break;
      }
      case STACK_GLOBAL: {
        const name = pop(at);
        const module = pop(at);
        if (typeof module !== "string" || typeof name !== "string") {
          fail(at, "STACK_GLOBAL needs two strings");
        }
        stack.push(hooks.findGlobal(module as string, name as string));
        break;
      }
      case REDUCE: {
        const args = pop(at);
        const callable = pop(at);
        if (!Array.isArray(args)) fail(at, "REDUCE arguments are not a tuple");
        stack.push(hooks.call(callable, args as unknown[], newDict));
        break;
      }
      case NEWOBJ: {
        const args = pop(at);
        const cls = pop(at);
        if (!Array.isArray(args)) fail(at, "NEWOBJ arguments are not a tuple");
        stack.push(hooks.call(cls, args as unknown[], newDict));
        break;
      }
      case NEWOBJ_EX: {
        const kwargs = pop(at);
        const args = pop(at);
        const cls = pop(at);
        if (!Array.isArray(args)) fail(at, "NEWOBJ_EX arguments are not a tuple");
        if (!isEmptyDict(kwargs)) fail(at, "NEWOBJ_EX with keyword arguments is not supported");
        stack.push(hooks.call(cls, args as unknown[], newDict));
        break;
      }
      case BUILD: {
        // BUILD sets an object's state (__setstate__). Nothing this reader accepts needs one, so
        // only an empty state is allowed; that also avoids quadratic dict merges.
        const state = pop(at);
        top(at);
        if (
          !(state === null || isEmptyDict(state) || (Array.isArray(state) && state.length === 0))
        ) {
          fail(at, "BUILD with object state is not supported");
        }
        break;
      }
      case BINPERSID: {
        const pid = pop(at);
        if (!hooks.persistentLoad) fail(at, "persistent ids are not allowed here");
        stack.push(hooks.persistentLoad!(pid));
        break;
      }
      default: {
        const name = REFUSED[op];
        fail(
          at,
          name
            ? `opcode ${name} is not supported`
            : `unknown opcode 0x${op.toString(16).padStart(2, "0")} (corrupt or not a pickle)`,
        );
      }
    }
  }
  throw new EplbFormatError(file, "truncated pickle: ended without a STOP opcode");
}

function isEmptyDict(value: unknown): boolean {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  for (const _ in value) return false;
  return true;
}

/** A newline-terminated ASCII line (GLOBAL's module and name), bounded by the input. */
function readLine(r: ByteReader, at: number, file: string): string {
  const start = r.pos;
  const nl = r.bytes.indexOf(0x0a, start);
  if (nl < 0 || nl >= r.end) {
    throw new EplbFormatError(file, `pickle opcode at offset ${at}: truncated GLOBAL name`);
  }
  // Python identifiers with dots; a 200-byte cap keeps hostile names out of messages anyway.
  if (nl - start > 200) {
    throw new EplbFormatError(
      file,
      `pickle opcode at offset ${at}: GLOBAL name longer than 200 bytes`,
    );
  }
  r.pos = nl + 1;
  return decodeUtf8(r.bytes.subarray(start, nl), file);
}

/** Little-endian two's complement integer of any length: a number, or a bigint beyond 2^53. */
function decodeLong(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  if (b.length <= 6) {
    let v = 0;
    for (let i = b.length - 1; i >= 0; i--) v = v * 256 + b[i];
    if (b[b.length - 1] & 0x80) v -= 2 ** (8 * b.length);
    return v;
  }
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(v)
    : v;
}

/**
 * The message an allow-list uses for a refused global, in one place so every reader says the
 * same thing.
 *
 * @example
 * ```ts
 * forbiddenGlobal("posix", "system"); // 'forbidden pickle global posix.system: only tensors, ...'
 * ```
 */
export function forbiddenGlobal(module: string, name: string): string {
  const qualified = `${module}.${name}`;
  const shown = /^[\w.]{1,120}$/.test(qualified) ? qualified : printable(qualified);
  return `forbidden pickle global ${shown}: only tensors, storages and dicts are read, nothing is executed`;
}
