import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { CliContext } from "../../src/cli/command.js";
import { runCli } from "../../src/cli/main.js";

/** What a CLI run printed and returned. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs the CLI in-process with captured streams (fast; for most CLI tests).
 *
 * @example
 * ```ts
 * const { code, stdout } = await cli(["--version"]);
 * ```
 */
export async function cli(argv: string[], cwd = process.cwd()): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const ctx: CliContext = {
    stdout: (t) => {
      stdout += t;
    },
    stderr: (t) => {
      stderr += t;
    },
    stderrIsTTY: false,
    cwd,
  };
  const code = await runCli(argv, ctx);
  return { code, stdout, stderr };
}

/** Path of the compiled `eplb` executable next to this compiled test helper. */
export const binPath = fileURLToPath(new URL("../../src/cli/bin.js", import.meta.url));

/**
 * Runs the real executable in a child process (for exit codes, streams and stack-trace checks).
 *
 * @example
 * ```ts
 * const { code, stderr } = spawnCli(["plan", "--bogus"]); // code 2, one line on stderr
 * ```
 */
export function spawnCli(argv: string[], cwd = process.cwd()): CliRun {
  const r = spawnSync(process.execPath, [binPath, ...argv], { cwd, encoding: "utf8" });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The repository root (tests run from it; fixtures live in `../shared` beside it). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** `../shared` beside the repository: golden vectors, fixtures, bench reference. */
export const sharedDir = fileURLToPath(new URL("../../../../shared/", import.meta.url));
