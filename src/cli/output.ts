import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { type CliContext, UsageError } from "./command.js";

/**
 * Writes a command's result to `--out` (when given) or to stdout.
 *
 * @example
 * ```ts
 * writeResult('{"phy2log": []}\n', undefined, ctx); // printed on stdout
 * ```
 */
export function writeResult(text: string, out: string | undefined, ctx: CliContext): void {
  if (out === undefined) {
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
