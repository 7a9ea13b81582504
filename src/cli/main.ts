import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { type CliCommand, type CliContext, isUserError } from "./command.js";
import { convertCommand } from "./convert.js";
import { evalCommand } from "./eval.js";
import { planCommand } from "./plan.js";
import { reportCommand } from "./report.js";
import { simulateCommand } from "./simulate.js";
import { synthCommand } from "./synth.js";

/** Every subcommand, in the order `eplb --help` lists them. */
export const commands: CliCommand[] = [
  planCommand,
  evalCommand,
  convertCommand,
  reportCommand,
  simulateCommand,
  synthCommand,
];

/** The package version, read from package.json beside the build. */
export function packageVersion(): string {
  for (const rel of ["../../../package.json", "../../package.json"]) {
    try {
      const pkg = JSON.parse(readFileSync(fileURLToPath(new URL(rel, import.meta.url)), "utf8"));
      if (pkg.name === "eplb") return String(pkg.version);
    } catch {
      // try the next candidate location
    }
  }
  return "unknown";
}

function mainHelp(): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return `Usage: eplb <command> [options]

Expert-Parallelism Load Balancer for Mixture-of-Experts models.

Commands:
${commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join("\n")}

Options:
  -h, --help     help (also: eplb <command> --help)
  -v, --version  print the version

Example:
  eplb plan --loads examples/loads.json --replicas 16 --groups 4 --nodes 2 --gpus 8
`;
}

/**
 * Runs the CLI with `argv` (without `node` and the script) and returns the exit code: 0 on
 * success, 2 for a user mistake (one line on stderr, nothing on stdout), 1 for a bug (with its
 * stack, since that is ours to fix).
 *
 * @example
 * ```ts
 * await runCli(["--version"], ctx); // 0, prints "0.1.0"
 * ```
 */
export async function runCli(argv: string[], ctx: CliContext): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    ctx.stdout(mainHelp());
    return name === undefined ? 2 : 0;
  }
  if (name === "-v" || name === "--version") {
    ctx.stdout(`${packageVersion()}\n`);
    return 0;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    ctx.stderr(
      `eplb: unknown command ${JSON.stringify(name)} (commands: ${commands.map((c) => c.name).join(", ")})\n`,
    );
    return 2;
  }
  if (rest.includes("-h") || rest.includes("--help")) {
    ctx.stdout(command.help);
    return 0;
  }
  try {
    await command.run(rest, ctx);
    return 0;
  } catch (error) {
    if (isUserError(error)) {
      ctx.stderr(`eplb ${name}: ${error.message.split("\n")[0]}\n`);
      return 2;
    }
    throw error;
  }
}

/** Context writing to the real process streams. */
export function processContext(): CliContext {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    stderrIsTTY: Boolean(process.stderr.isTTY),
    cwd: process.cwd(),
  };
}
