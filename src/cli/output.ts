import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { type CliContext, UsageError } from "./command.js";

/**
 * Writes a command's result to `--out` (when given) or to stdout. Bytes (a torch file) go to
 * `--out` only: a binary file on a terminal helps nobody.
 *
 * @example
 * ```ts
 * writeResult('{"phy2log": []}\n', undefined, ctx); // printed on stdout
 * ```
 */
export function writeResult(
  text: string | Uint8Array,
  out: string | undefined,
  ctx: CliContext,
): void {
  if (out === undefined) {
    if (typeof text !== "string") throw new UsageError("a binary result needs --out FILE");
    ctx.stdout(text);
    return;
  }
  try {
    writeFileSync(resolve(ctx.cwd, out), text);
  } catch (error) {
    throw new UsageError(
      `cannot write ${out}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`,
    );
  }
}

/**
 * Formats a ratio for the human summary with 3 decimals.
 *
 * @example
 * ```ts
 * fixed3(0.93412); // "0.934"
 * ```
 */
export function fixed3(x: number): string {
  return x.toFixed(3);
}

/**
 * A fixed-width text table: header row, then rows; columns padded to their widest cell, the
 * first `alignLeft` columns left-aligned and the rest right-aligned (numbers).
 *
 * @example
 * ```ts
 * textTable(["name", "value"], [["a", "1"], ["bb", "10"]]);
 * // "name  value\na         1\nbb       10"
 * ```
 */
export function textTable(header: string[], rows: string[][], alignLeft = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i < alignLeft ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join("  ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}

/**
 * Four decimals, for balancedness.
 *
 * @example
 * ```ts
 * fixed4(0.87654321); // "0.8765"
 * ```
 */
export const fixed4 = (x: number): string => x.toFixed(4);

/**
 * A fraction as a percentage with two decimals.
 *
 * @example
 * ```ts
 * percent2(0.14309); // "14.31%"
 * ```
 */
export const percent2 = (x: number): string => `${(x * 100).toFixed(2)}%`;

/**
 * A slot count, whole or (a mean) with one decimal.
 *
 * @example
 * ```ts
 * slotCount(2390); // "2390"
 * slotCount(2390.1666); // "2390.2"
 * ```
 */
export const slotCount = (x: number): string => (Number.isInteger(x) ? String(x) : x.toFixed(1));

/**
 * Six significant digits, for machine-readable output.
 *
 * @example
 * ```ts
 * round6(0.881656584695); // 0.881657
 * ```
 */
export const round6 = (x: number): number => Number(x.toPrecision(6));
