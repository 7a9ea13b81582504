import { type CliCommand, type CliContext, isUserError } from "./command.js";
import { convertCommand } from "./convert.js";
import { evalCommand } from "./eval.js";
import { planCommand } from "./plan.js";
import { reportCommand } from "./report.js";
import { simulateCommand } from "./simulate.js";
import { synthCommand } from "./synth.js";
import { packageVersion } from "./version.js";

/** Every subcommand, in the order `eplb --help` lists them. */
export const commands: CliCommand[] = [
  planCommand,
  evalCommand,
  convertCommand,
  reportCommand,
  simulateCommand,
  synthCommand,
];

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
 * success, 2 for a user mistake (one line on stderr, nothing on stdout), 70 for a bug (one line
 * naming it; `EPLB_DEBUG=1` adds the stack).
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
    ctx.stderr(internalErrorText(`eplb ${name}`, error));
    return INTERNAL_ERROR_EXIT;
  }
}

/** Exit code of an unexpected error (EX_SOFTWARE of sysexits.h): a bug of ours, not the user's. */
export const INTERNAL_ERROR_EXIT = 70;

/**
 * The report of an unexpected error: one line by default (a stack trace frightens and says
 * nothing to a user), the stack too when `EPLB_DEBUG=1` is set in the environment.
 *
 * @example
 * ```ts
 * internalErrorText("eplb plan", new Error("boom"));
 * // "eplb plan: internal error: boom; EPLB_DEBUG=1 shows the stack\n"
 * ```
 */
export function internalErrorText(prefix: string, error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const first = message.split("\n")[0].slice(0, 300);
  if (process.env.EPLB_DEBUG === "1") {
    const stack = error instanceof Error && error.stack ? error.stack : message;
    return `${prefix}: internal error: ${first}\n${stack}\n`;
  }
  return `${prefix}: internal error: ${first}; EPLB_DEBUG=1 shows the stack\n`;
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
