import { resolve } from "node:path";
import { EplbFormatError } from "./errors.js";

/**
 * Refuses a file given twice (by any spelling of its path): its loads or tokens would be counted
 * twice, a silent error in every figure made from them.
 *
 * @param files the files, folders already expanded
 * @param counted what would be counted twice, for the message ("it", "its tokens")
 * @throws EplbFormatError naming the second mention of the file
 * @example
 * ```ts
 * requireDistinctFiles(["a.npy", "b.npy"], "its tokens"); // passes
 * requireDistinctFiles(["a.npy", "./a.npy"], "its tokens");
 * // throws EplbFormatError: ./a.npy: is given twice: its tokens would be counted twice
 * ```
 */
export function requireDistinctFiles(files: readonly string[], counted: string): void {
  const seen = new Set<string>();
  for (const f of files) {
    const key = resolve(f);
    if (seen.has(key))
      throw new EplbFormatError(f, `is given twice: ${counted} would be counted twice`);
    seen.add(key);
  }
}
