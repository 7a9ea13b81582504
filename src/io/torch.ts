import { ByteReader, decodeLatin1, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import { forbiddenGlobal, PickleGlobal, type PickleHooks, unpickle, unpickleAt } from "./pickle.js";
import {
  checkedNumel,
  contiguousStrides,
  DTYPE_SIZE,
  type DType,
  decodeElements,
  gatherStrided,
  isTensor,
  stridedSpan,
  type Tensor,
} from "./tensor.js";
import type { FileValue } from "./value.js";
import { openZip, type ZipArchive } from "./zip.js";

/** The legacy storage classes `torch.save` names in persistent ids, and their element types. */
const STORAGE_DTYPES: Readonly<Record<string, DType>> = {
  LongStorage: "int64",
  IntStorage: "int32",
  ShortStorage: "int16",
  CharStorage: "int8",
  ByteStorage: "uint8",
  BoolStorage: "bool",
  FloatStorage: "float32",
  DoubleStorage: "float64",
  HalfStorage: "float16",
  BFloat16Storage: "bfloat16",
  UntypedStorage: "uint8",
};

/** Callables the pickle may name, implemented here in TypeScript (nothing from Python runs). */
const CALLABLES = new Set([
  "torch._utils._rebuild_tensor_v2",
  "torch._utils._rebuild_tensor",
  "torch._utils._rebuild_parameter",
  "collections.OrderedDict",
  "torch.Size",
]);

/**
 * A storage named by a persistent id: the element type, and the raw bytes of `data/<key>` read
 * (inflated) only when a tensor view over it has passed its checks, so a hostile view is refused
 * before anything is allocated.
 */
class TorchStorage {
  readonly dtype: DType;
  readonly key: string;
  readonly numel: number;
  readonly bytes: () => Uint8Array;
  constructor(dtype: DType, key: string, numel: number, bytes: () => Uint8Array) {
    this.dtype = dtype;
    this.key = key;
    this.numel = numel;
    this.bytes = bytes;
  }
}

/** Most bytes a compressed (deflated) `data.pkl` may inflate to: 16 MiB. */
export const MAX_COMPRESSED_PICKLE_BYTES = 16 * 1024 * 1024;

/** The `byteorder` entry holds "little" or "big": anything longer is not one. */
const MAX_BYTEORDER_BYTES = 16;

/** `torch.save`'s pre-1.6 format starts with this pickled magic number (not a zip). */
const LEGACY_MAGIC = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8];

/**
 * True when `bytes` start as `torch.save` files of the legacy (pre-1.6, non-zip) format do: a
 * protocol-2 pickle (`\x80\x02`) of torch's magic number `0x1950a86a20f9469cfc6c`.
 *
 * @param bytes the file's first bytes (12 suffice)
 * @example
 * ```ts
 * isLegacyTorch(readFileSync("old.pt")); // true for torch.save(x, f, _use_new_zipfile_serialization=False)
 * ```
 */
export function isLegacyTorch(bytes: Uint8Array): boolean {
  return LEGACY_MAGIC.every((b, i) => bytes[i] === b);
}

/**
 * Reads a `torch.save` file (the zip format of torch >= 1.6, or the legacy format: see
 * {@link readLegacyTorch}) into plain values: dicts, lists,
 * numbers, strings and {@link Tensor}s. The pickle runs on a data-only VM whose allow-list is
 * the tensor and storage rebuilders, `collections.OrderedDict` and `torch.Size`; any other
 * global (e.g. `posix.system`, `builtins.eval`) is refused when named. Storages are read from
 * `<archive>/data/<key>` in the byte order of `<archive>/byteorder` (little when absent); views
 * with a storage offset or strides are materialised contiguous.
 *
 * @example
 * ```ts
 * const dump = readTorch(readFileSync("expert_distribution_recorder.pt"), "dump.pt");
 * // { rank: 0, logical_count: { dtype: "int32", shape: [16, 4, 16], data: Float64Array(1024) },
 * //   average_utilization_rate_over_window: 0.83 }
 * ```
 */
export function readTorch(bytes: Uint8Array, file: string): FileValue {
  if (isLegacyTorch(bytes)) {
    try {
      return readLegacyTorch(bytes, file);
    } catch (error) {
      if (!(error instanceof EplbFormatError) || error.problem.startsWith("legacy")) throw error;
      throw new EplbFormatError(
        file,
        `legacy (non-zip) torch.save file: ${error.problem}; if torch loads it, re-save it ` +
          "with torch >= 1.6 as torch.save(torch.load(path), path)",
      );
    }
  }
  const zip = openZip(bytes, file);
  const prefix = archivePrefix(zip, file);
  const pklEntry = zip.entries.get(`${prefix}data.pkl`)!;
  // Every pickle opcode of two bytes can make one object, so a compressed pickle is bounded on
  // its own: torch keeps tensor data in storages and its pickles are kilobytes. A stored one is
  // bounded by the file.
  const pkl = zip.read(
    pklEntry,
    pklEntry.method === 0 ? Number.POSITIVE_INFINITY : MAX_COMPRESSED_PICKLE_BYTES,
  );
  const byteorder = zip.entries.get(`${prefix}byteorder`);
  let littleEndian = true;
  if (byteorder) {
    const text = decodeLatin1(zip.read(byteorder, MAX_BYTEORDER_BYTES)).trim();
    if (text !== "little" && text !== "big") {
      throw new EplbFormatError(file, `byteorder entry says ${printable(text)}, not little or big`);
    }
    littleEndian = text === "little";
  }

  // A hostile pickle could rebuild many tensors over one large storage; bound what it may
  // materialise by what the archive holds (honest files stay far below). Stored bytes are in the
  // file; compressed ones are counted once, since those could claim up to the inflate limit
  // (zip.ts) from a small file.
  let elementBudget = 4096;
  for (const [name, entry] of zip.entries) {
    if (name.startsWith(`${prefix}data/`)) {
      elementBudget += entry.method === 0 ? 4 * entry.size : entry.size;
    }
  }
  const storageData = new Map<string, Uint8Array>();

  const persistentLoad = (pid: unknown): TorchStorage => {
    const { dtype, key, numel } = storagePid(pid, 5, file);
    const entry = zip.entries.get(`${prefix}data/${key}`);
    if (!entry)
      throw new EplbFormatError(file, `storage ${printable(key)} is missing from the archive`);
    // The declared size is checked here; the bytes are read when a view needs them.
    if (entry.size < numel * DTYPE_SIZE[dtype]) {
      throw new EplbFormatError(
        file,
        `storage ${printable(key)} holds ${entry.size} bytes, ${numel} ${dtype} need ${numel * DTYPE_SIZE[dtype]}`,
      );
    }
    const bytes = () => {
      let data = storageData.get(key);
      if (!data) {
        data = zip.read(entry);
        storageData.set(key, data);
      }
      return data;
    };
    return new TorchStorage(dtype, key, numel, bytes);
  };
  const context = {
    file,
    littleEndian,
    budget: { elements: elementBudget },
    decode: true,
  };
  const value = unpickle(pkl, file, torchHooks(context, persistentLoad));
  assertPlain(value, file);
  return value as FileValue;
}

/** The magic number legacy `torch.save` pickles first, and the protocol version it pickles next. */
const LEGACY_MAGIC_NUMBER = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL_VERSION = 1001;

/**
 * Reads a legacy `torch.save` file (torch < 1.6, or `_use_new_zipfile_serialization=False`): five
 * things back to back, as torch's `_legacy_save` writes them: the pickled magic number, the
 * protocol version (1001) and a `sys_info` dict; the object's pickle, whose persistent ids are
 * `('storage', type, key, location, numel, view_metadata)`; the pickled list of storage keys;
 * then each storage in that order as a little-endian int64 element count and its raw
 * little-endian elements. The object's pickle is run twice: once to learn its storages and
 * where it ends (the storages follow it), once with their bytes. Same allow-list as
 * {@link readTorch}.
 *
 * @param bytes the file
 * @param file file name for messages
 * @throws EplbFormatError when a part is missing or inconsistent, a storage is a view
 *   (`view_metadata`, from torch < 1.0), or the file was written big-endian
 * @example
 * ```ts
 * readLegacyTorch(readFileSync("old.pt"), "old.pt"); // { logical_count: { dtype: "int64", ... } }
 * ```
 */
export function readLegacyTorch(bytes: Uint8Array, file: string): FileValue {
  const inert = (): never => {
    throw new EplbFormatError(file, "legacy torch header holds a persistent id");
  };
  const scan = { file, littleEndian: true, budget: { elements: 0 }, decode: false };
  const magic = unpickleAt(bytes, file, torchHooks(scan, inert), 0);
  if (magic.value !== LEGACY_MAGIC_NUMBER) {
    throw new EplbFormatError(file, "legacy torch magic number is wrong: not a torch.save file");
  }
  const version = unpickleAt(bytes, file, torchHooks(scan, inert), magic.end);
  if (version.value !== LEGACY_PROTOCOL_VERSION) {
    throw new EplbFormatError(
      file,
      `legacy torch protocol version is ${printable(String(version.value))}, not ${LEGACY_PROTOCOL_VERSION}`,
    );
  }
  const sysInfo = unpickleAt(bytes, file, torchHooks(scan, inert), version.end);
  const info = sysInfo.value as Record<string, unknown> | null;
  if (typeof info !== "object" || info === null || info.little_endian !== true) {
    throw new EplbFormatError(
      file,
      "legacy torch file written on a big-endian machine (or without sys_info): re-save it with " +
        "torch >= 1.6 as torch.save(torch.load(path), path)",
    );
  }
  const declared = new Map<string, { dtype: DType; numel: number }>();
  const learn = (pid: unknown): TorchStorage => {
    const { dtype, key, numel } = storagePid(pid, 6, file);
    const view = (pid as unknown[])[5];
    if (view !== null) {
      throw new EplbFormatError(
        file,
        "legacy torch file with storage views (torch < 1.0): re-save it with torch >= 1.6 as " +
          "torch.save(torch.load(path), path)",
      );
    }
    declared.set(key, { dtype, numel });
    return new TorchStorage(dtype, key, numel, () => new Uint8Array(0));
  };
  const main = unpickleAt(bytes, file, torchHooks(scan, learn), sysInfo.end);
  const keys = unpickleAt(bytes, file, torchHooks(scan, inert), main.end);
  if (!Array.isArray(keys.value) || !keys.value.every((k) => typeof k === "string")) {
    throw new EplbFormatError(file, "legacy torch storage key list is not a list of strings");
  }
  const storages = new Map<string, Uint8Array>();
  const r = new ByteReader(bytes, file, "legacy torch storages", keys.end);
  let storageBytes = 0;
  for (const key of keys.value as string[]) {
    const d = declared.get(key);
    if (!d) throw new EplbFormatError(file, `storage ${printable(key)} is listed but never used`);
    const numel = r.u64();
    if (numel < d.numel) {
      throw new EplbFormatError(
        file,
        `storage ${printable(key)} holds ${numel} elements, the object uses ${d.numel}`,
      );
    }
    const data = r.take(numel * DTYPE_SIZE[d.dtype]);
    storages.set(key, data);
    storageBytes += data.length;
  }
  const supply = (pid: unknown): TorchStorage => {
    const { dtype, key, numel } = storagePid(pid, 6, file);
    const data = storages.get(key);
    if (!data)
      throw new EplbFormatError(file, `storage ${printable(key)} is missing from the file`);
    return new TorchStorage(dtype, key, numel, () => data);
  };
  const context = {
    file,
    littleEndian: true,
    budget: { elements: 4 * storageBytes + 4096 },
    decode: true,
  };
  const { value } = unpickleAt(bytes, file, torchHooks(context, supply), sysInfo.end);
  assertPlain(value, file);
  return value as FileValue;
}

/**
 * Checks a persistent id `('storage', type, key, location, numel[, view_metadata])` (5 entries in
 * zip files, 6 in legacy ones) and returns its element type, key and element count.
 */
function storagePid(
  pid: unknown,
  length: number,
  file: string,
): { dtype: DType; key: string; numel: number } {
  if (!Array.isArray(pid) || pid.length !== length || pid[0] !== "storage") {
    throw new EplbFormatError(
      file,
      `persistent id is not a ('storage', type, key, location, numel${length === 6 ? ", view" : ""}) tuple`,
    );
  }
  const [, type, key, , numel] = pid;
  if (!(type instanceof PickleGlobal) || !Object.hasOwn(STORAGE_DTYPES, type.name)) {
    throw new EplbFormatError(file, "persistent id does not name a torch storage class");
  }
  if (typeof key !== "string") throw new EplbFormatError(file, "storage key is not a string");
  if (typeof numel !== "number" || !Number.isSafeInteger(numel) || numel < 0) {
    throw new EplbFormatError(file, `storage ${printable(key)} has an invalid size`);
  }
  return { dtype: STORAGE_DTYPES[type.name], key, numel };
}

/**
 * How the torch pickles are run: the file's byte order, the element budget left (shared across
 * tensors), and whether tensors are decoded (false on the legacy reader's first pass, which only
 * learns the storages and where the pickle ends).
 */
interface TorchContext {
  readonly file: string;
  readonly littleEndian: boolean;
  readonly budget: { elements: number };
  readonly decode: boolean;
}

/** The allow-list and callables of torch pickles, with `persistentLoad` supplying storages. */
function torchHooks(
  context: TorchContext,
  persistentLoad: (pid: unknown) => TorchStorage,
): PickleHooks {
  const { file } = context;
  const rebuild = (args: unknown[]): Tensor => rebuildTensor(args, context);
  return {
    findGlobal(module, name) {
      const qualified = `${module}.${name}`;
      if (CALLABLES.has(qualified)) return new PickleGlobal(module, name);
      if (
        (module === "torch" || module === "torch.storage") &&
        Object.hasOwn(STORAGE_DTYPES, name)
      ) {
        return new PickleGlobal(module, name);
      }
      throw new EplbFormatError(file, forbiddenGlobal(module, name));
    },
    call(callable, args, newDict) {
      if (!(callable instanceof PickleGlobal)) {
        throw new EplbFormatError(file, "pickle calls something that is not an allowed function");
      }
      switch (callable.qualifiedName) {
        case "torch._utils._rebuild_tensor_v2":
        case "torch._utils._rebuild_tensor":
          return rebuild(args);
        case "torch._utils._rebuild_parameter":
          if (!isTensor(args[0]))
            throw new EplbFormatError(file, "parameter rebuild without a tensor");
          return args[0];
        case "collections.OrderedDict":
          if (args.length !== 0) {
            throw new EplbFormatError(
              file,
              "collections.OrderedDict with arguments is not supported",
            );
          }
          return newDict();
        case "torch.Size":
          if (args.length !== 1 || !Array.isArray(args[0])) {
            throw new EplbFormatError(file, "torch.Size needs one tuple");
          }
          return args[0];
        default:
          throw new EplbFormatError(file, `${callable.qualifiedName} cannot be called`);
      }
    },
    persistentLoad,
  };
}

/** `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`: the view, row-major. */
function rebuildTensor(args: unknown[], context: TorchContext): Tensor {
  const { file, littleEndian, budget } = context;
  const [storage, offset, size, stride] = args;
  if (!(storage instanceof TorchStorage)) {
    throw new EplbFormatError(file, "tensor rebuild without a storage");
  }
  if (typeof offset !== "number" || !Number.isSafeInteger(offset) || offset < 0) {
    throw new EplbFormatError(file, "tensor storage offset is not a non-negative integer");
  }
  const shape = size as number[];
  const numel = checkedNumel(shape, storage.numel, file, "tensor size");
  if (!Array.isArray(stride) || stride.length !== shape.length) {
    throw new EplbFormatError(file, "tensor stride does not match its size");
  }
  for (const s of stride) {
    if (typeof s !== "number" || !Number.isSafeInteger(s) || s < 0) {
      throw new EplbFormatError(
        file,
        `tensor stride has an invalid entry ${String(s).slice(0, 30)}`,
      );
    }
  }
  if (!context.decode)
    return { dtype: storage.dtype, shape: shape.slice(), data: new Float64Array(0) };
  budget.elements -= numel;
  if (budget.elements < 0) {
    throw new EplbFormatError(file, "pickle rebuilds more tensor elements than the archive holds");
  }
  const span = stridedSpan(offset, shape, stride);
  if (span && span.max >= storage.numel) {
    throw new EplbFormatError(
      file,
      `tensor view (offset ${offset}, size [${shape.join(", ")}]) reads past its storage of ${storage.numel} elements`,
    );
  }
  const itemsize = DTYPE_SIZE[storage.dtype];
  let data: Float64Array;
  if (!span) {
    data = new Float64Array(0);
  } else if (isContiguous(shape, stride)) {
    data = decodeElements(
      storage.bytes().subarray(offset * itemsize),
      storage.dtype,
      littleEndian,
      numel,
      file,
    );
  } else {
    // Decode only the touched range of the storage, then gather the view row-major.
    const src = decodeElements(
      storage.bytes().subarray(span.min * itemsize),
      storage.dtype,
      littleEndian,
      span.max - span.min + 1,
      file,
    );
    data = gatherStrided(src, offset - span.min, shape, stride as number[]);
  }
  return { dtype: storage.dtype, shape: shape.slice(), data };
}

function archivePrefix(zip: ZipArchive, file: string): string {
  for (const name of zip.entries.keys()) {
    const slash = name.indexOf("/");
    if (slash > 0 && name.slice(slash + 1) === "data.pkl") return name.slice(0, slash + 1);
  }
  for (const name of zip.entries.keys()) {
    if (name.endsWith("constants.pkl") || name.includes("/code/")) {
      throw new EplbFormatError(
        file,
        "a TorchScript archive (torch.jit.save) is not a torch.save file",
      );
    }
  }
  throw new EplbFormatError(file, "zip archive has no <name>/data.pkl: not a torch.save file");
}

function isContiguous(shape: readonly number[], stride: readonly number[]): boolean {
  const expected = contiguousStrides(shape);
  for (let d = 0; d < shape.length; d++) {
    // A dimension of size 1 never moves, so its stride is irrelevant (torch writes anything).
    if (shape[d] !== 1 && stride[d] !== expected[d]) return false;
  }
  return true;
}

/**
 * The pickle's result must be plain data: a storage or a class left bare in it means a file
 * this reader does not understand. Iterative, visiting each object once (shared sub-lists and
 * cycles are possible in a pickle).
 */
function assertPlain(value: unknown, file: string): void {
  const seen = new Set<object>();
  const todo: unknown[] = [value];
  while (todo.length > 0) {
    const v = todo.pop();
    if (typeof v !== "object" || v === null || seen.has(v)) continue;
    seen.add(v);
    if (v instanceof TorchStorage) {
      throw new EplbFormatError(file, "the file holds a bare storage, not a tensor");
    }
    if (v instanceof PickleGlobal) {
      throw new EplbFormatError(file, `the file holds the class ${v.qualifiedName}, not data`);
    }
    if (Array.isArray(v)) {
      for (const item of v) todo.push(item);
    } else if (!(v instanceof Uint8Array) && !isTensor(v)) {
      for (const key in v) todo.push((v as Record<string, unknown>)[key]);
    }
  }
}
