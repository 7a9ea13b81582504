import { statSync } from "node:fs";
import { resolve } from "node:path";
import { AtomicFile, OutputWriteError, writeFileAtomic } from "../io/atomic-write.js";
import type { Flags } from "./args.js";
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
  writeOutputFile(out, text, ctx);
}

/**
 * The one function every output file of the CLI goes through: written to a temporary file in the
 * same folder and renamed onto `path` when complete, so a failed write leaves the old file
 * intact; a symbolic link onto a file is refused rather than written through.
 *
 * @param path the output path as the user gave it (relative to `ctx.cwd`)
 * @param data the content (strings as UTF-8)
 * @param ctx the command's context
 * @throws UsageError naming the path and the reason when the file cannot be written
 * @example
 * ```ts
 * const text = JSON.stringify({ phy2log: [[0, 1, 1, 2]] });
 * writeOutputFile("plan.json", text, ctx);
 * readFileSync("plan.json", "utf8") === text; // true
 * ```
 */
export function writeOutputFile(path: string, data: string | Uint8Array, ctx: CliContext): void {
  try {
    writeFileAtomic(resolve(ctx.cwd, path), data);
  } catch (error) {
    throw outputError(path, error);
  }
}

/**
 * An output written in pieces (a streamed `.npy`), atomically like {@link writeOutputFile}:
 * `commit` renames the complete file into place, `abort` leaves the old one.
 *
 * @throws UsageError when the temporary file cannot be created
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("step 1\n");
 * const f = openOutputFile("steps.txt", ctx);
 * f.write(bytes);
 * f.write(bytes);
 * f.commit();
 * readFileSync("steps.txt", "utf8"); // "step 1\nstep 1\n"
 * ```
 */
export function openOutputFile(
  path: string,
  ctx: CliContext,
): { write(bytes: Uint8Array): void; commit(): void; abort(): void } {
  let file: AtomicFile;
  try {
    file = new AtomicFile(resolve(ctx.cwd, path));
  } catch (error) {
    throw outputError(path, error);
  }
  const wrap = (run: () => void) => {
    try {
      run();
    } catch (error) {
      throw outputError(path, error);
    }
  };
  return {
    write: (bytes) => wrap(() => file.write(bytes)),
    commit: () => wrap(() => file.commit()),
    abort: () => file.abort(),
  };
}

function outputError(path: string, error: unknown): Error {
  if (error instanceof OutputWriteError) {
    return new UsageError(`cannot write ${path}: ${error.reason}`);
  }
  return error as Error;
}

/** Flags naming files a command reads (whatever the command; absent ones are skipped). */
export const INPUT_FLAGS = [
  "loads",
  "previous",
  "placement",
  "trace",
  "slot-placement",
  "routing",
] as const;
/** Flags naming files a command writes (`-` is stdout). */
export const OUTPUT_FLAGS = ["out", "transfers", "html"] as const;

/**
 * Refuses, before any work, an output path that is also an input of the same run or another of
 * its outputs (the same file under two names too: links, `./a` and `a`), since writing it would
 * destroy a file of the user's or overwrite one output with another.
 *
 * @param flags the parsed flags
 * @param ctx the command's context (paths are relative to its cwd)
 * @throws UsageError naming both flags and the path
 * @example
 * ```ts
 * checkOutputPaths({ loads: "a.json", out: "a.json" }, ctx);
 * // throws: --out a.json is also --loads: eplb does not overwrite its inputs
 * ```
 */
export function checkOutputPaths(flags: Flags, ctx: CliContext): void {
  const named = (names: readonly string[]) =>
    names.flatMap((flag) => {
      const v = flags[flag];
      const paths = typeof v === "string" ? [v] : Array.isArray(v) ? v : [];
      return paths.filter((p) => p !== "" && p !== "-").map((path) => ({ flag, path }));
    });
  const inputs = named(INPUT_FLAGS).map((f) => ({ ...f, id: fileId(resolve(ctx.cwd, f.path)) }));
  const seen: Array<{ flag: string; path: string; id: string }> = [];
  for (const out of named(OUTPUT_FLAGS)) {
    const id = fileId(resolve(ctx.cwd, out.path));
    if (id.startsWith("dev:stream")) continue;
    const clash = inputs.find((i) => i.id === id) ?? seen.find((o) => o.id === id);
    if (clash) {
      const what = inputs.includes(clash as (typeof inputs)[number])
        ? "eplb does not overwrite its inputs"
        : "two outputs cannot share a file";
      throw new UsageError(`--${out.flag} ${out.path} is also --${clash.flag}: ${what}`);
    }
    seen.push({ ...out, id });
  }
}

/**
 * An identity for a path: device and inode when the file exists (so links and other spellings
 * of the same file compare equal), else the resolved path. Devices and pipes get a marker, since
 * writing to them destroys nothing.
 */
function fileId(path: string): string {
  try {
    const st = statSync(path);
    if (!st.isFile()) return `dev:stream:${st.dev}:${st.ino}`;
    return `ino:${st.dev}:${st.ino}`;
  } catch {
    return `path:${path}`;
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

// Six significant digits, for machine-readable output: the one definition is the core's.
export { round6 } from "../core/routing/summary.js";
