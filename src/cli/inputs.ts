import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { type LoadMatrix, toLoadMatrix } from "../core/matrix.js";
import { UsageError } from "./command.js";

/**
 * Reads a loads file for a command. (Interim JSON-only reader; the format readers in `src/io`
 * replace it.)
 *
 * @example
 * ```ts
 * readLoadsFile("examples/loads.json", process.cwd()); // { layers: 2, experts: 12, data: ... }
 * ```
 */
export function readLoadsFile(path: string, cwd: string): LoadMatrix {
  let text: string;
  try {
    text = readFileSync(resolve(cwd, path), "utf8");
  } catch (error) {
    throw new UsageError(
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${path}: invalid JSON (${(error as Error).message})`);
  }
  const weight =
    json !== null && typeof json === "object" && !Array.isArray(json) && "weight" in json
      ? (json as { weight: unknown }).weight
      : json;
  return toLoadMatrix(weight as number[][], `${path}: weight`);
}
