import { printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import { LOAD_KEYS, PLACEMENT_KEYS } from "./interpret.js";
import { readNpy } from "./npy.js";
import { VLLM_SLOT_KEYS } from "./slot-fold.js";
import type { FileObject, FileValue } from "./value.js";
import { openZip, type ZipArchive } from "./zip.js";

/** Names that tell the loads and placement readers which array of an archive to use. */
const KNOWN_NAMES: readonly string[] = [...LOAD_KEYS, ...PLACEMENT_KEYS, ...VLLM_SLOT_KEYS];

/**
 * True when a ZIP archive is a NumPy `.npz` (every entry a `.npy` file), not a `torch.save`
 * archive (which holds `<name>/data.pkl`).
 *
 * @param zip an opened archive
 * @example
 * ```ts
 * isNpzArchive(openZip(readFileSync("loads.npz"), "loads.npz")); // true
 * ```
 */
export function isNpzArchive(zip: ZipArchive): boolean {
  const names = [...zip.entries.keys()];
  return names.length > 0 && names.every((n) => n.endsWith(".npy"));
}

/**
 * Reads a NumPy `.npz` archive (`numpy.savez`, stored, or `numpy.savez_compressed`, deflate)
 * into its arrays, named as `numpy.load` names them (the entry name without `.npy`):
 * - with `key`, or when an array has a name the readers look for (`logical_count`,
 *   `physical_to_logical_map`, `expert_load_window`, ...): a dict of every array, so the key or
 *   the well-known names choose, and vLLM's window is folded by the map saved beside it;
 * - else one array alone: that array;
 * - else several arrays: refused, naming them, since any choice would be a guess.
 *
 * @param bytes the archive
 * @param file file name for messages
 * @param key the array the user named (`--key`), if any
 * @throws EplbFormatError for a broken archive or member, or several arrays none of which is
 *   named by `key` or a well-known name
 * @example
 * ```ts
 * readNpz(readFileSync("loads.npz"), "loads.npz"); // { dtype: "int64", shape: [3, 8], ... }
 * readNpz(readFileSync("state.npz"), "state.npz", "expert_load_window");
 * // { expert_load_window: ..., physical_to_logical_map: ... }
 * ```
 */
export function readNpz(bytes: Uint8Array, file: string, key?: string): FileValue {
  const zip = openZip(bytes, file);
  if (!isNpzArchive(zip)) {
    throw new EplbFormatError(file, "is a zip archive but not a .npz (not every entry is .npy)");
  }
  const names = [...zip.entries.keys()].map((n) => n.slice(0, -".npy".length));
  if (key === undefined && !names.some((n) => KNOWN_NAMES.includes(n))) {
    if (names.length > 1) {
      throw new EplbFormatError(
        file,
        `holds ${names.length} arrays (${names
          .map((n) => printable(n, 30))
          .join(", ")
          .slice(0, 300)}): ` + "name the one with the loads with --key",
      );
    }
  }
  const arrays: FileObject = {};
  for (const [entryName, entry] of zip.entries) {
    const name = entryName.slice(0, -".npy".length);
    const tensor = readNpy(zip.read(entry), `${file}[${printable(name, 30)}]`);
    // defineProperty: an array named "__proto__" stays data.
    Object.defineProperty(arrays, name, {
      value: tensor,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  if (key === undefined && names.length === 1 && !KNOWN_NAMES.includes(names[0])) {
    return arrays[names[0]];
  }
  return arrays;
}
