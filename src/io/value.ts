import type { Tensor } from "./tensor.js";

/**
 * What any reader turns a file into: plain JavaScript data. Dicts are objects with string keys,
 * lists and tuples arrays, Python ints numbers (a bigint only beyond 2^53), None `null`, bytes a
 * Uint8Array, and arrays with a dtype (`.pt` tensors, `.npy`, safetensors) {@link Tensor}s.
 */
export type FileValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | Tensor
  | FileValue[]
  | FileObject;

/** A dict read from a file. */
export interface FileObject {
  [key: string]: FileValue;
}

/**
 * True for a dict read from a file (not an array, tensor or bytes).
 *
 * @example
 * ```ts
 * isFileObject({ logical_count: [[1, 2]] }); // true
 * isFileObject([1, 2]); // false
 * ```
 */
export function isFileObject(value: unknown): value is FileObject {
  return (
    typeof value === "object" &&
    value !== null &&
    !Array.isArray(value) &&
    !(value instanceof Uint8Array) &&
    !((value as { data?: unknown }).data instanceof Float64Array)
  );
}
