import { readPlacement } from "../../src/io/read.js";

/**
 * A placement file's `phy2log` as nested rows, for comparing what the CLI wrote with what it read.
 *
 * @example
 * ```ts
 * placementRows("init.json"); // [[11, 11, 6, ...], ...]
 * ```
 */
export function placementRows(path: string): number[][] {
  const p = readPlacement(path);
  return Array.from({ length: p.layers }, (_, l) =>
    Array.from(p.phy2log.subarray(l * p.numReplicas, (l + 1) * p.numReplicas)),
  );
}
