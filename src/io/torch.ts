import { decodeLatin1, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import { forbiddenGlobal, PickleGlobal, unpickle } from "./pickle.js";
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
 * Reads a `torch.save` file (the zip format of torch >= 1.6) into plain values: dicts, lists,
 * numbers, strings and {@link Tensor}s. The pickle runs on a data-only VM whose allow-list is
 * the tensor and storage rebuilders, `collections.OrderedDict` and `torch.Size`; any other
 * global (e.g. `posix.system`, `builtins.eval`) is refused when named. Storages are read from
 * `<archive>/data/<key>` in the byte order of `<archive>/byteorder` (little when absent); views
 * with a storage offset or strides are materialised contiguous.
 *
 * @example
 * ```ts
 * const dump = readTorch(readFileSync("expert_distribution_recorder.pt"), "dump.pt");
 * // { rank: 0, logical_count: { dtype: "int64", shape: [16, 4, 16], data: Float64Array(1024) },
 * //   average_utilization_rate_over_window: null }
 * ```
 */
export function readTorch(bytes: Uint8Array, file: string): FileValue {
  if (LEGACY_MAGIC.every((b, i) => bytes[i] === b)) {
    throw new EplbFormatError(
      file,
      "legacy (pre-1.6, non-zip) torch.save format is not supported: re-save it with torch >= 1.6",
    );
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
  // materialise by what the archive holds (honest files stay far below).
  // Stored bytes are in the file; compressed ones are counted once, since those could claim
  // up to the inflate limit (zip.ts) from a small file.
  let elementBudget = 4096;
  for (const [name, entry] of zip.entries) {
    if (name.startsWith(`${prefix}data/`)) {
      elementBudget += entry.method === 0 ? 4 * entry.size : entry.size;
    }
  }
  const storageData = new Map<string, Uint8Array>();

  const persistentLoad = (pid: unknown): TorchStorage => {
    if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== "storage") {
      throw new EplbFormatError(
        file,
        "persistent id is not a ('storage', type, key, location, numel) tuple",
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
    const dtype = STORAGE_DTYPES[type.name];
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

  const rebuild = (args: unknown[]): Tensor => {
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
    elementBudget -= numel;
    if (elementBudget < 0) {
      throw new EplbFormatError(
        file,
        "pickle rebuilds more tensor elements than the archive holds",
      );
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
  };

  const value = unpickle(pkl, file, {
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
  });
  assertPlain(value, file);
  return value as FileValue;
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
