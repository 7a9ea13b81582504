import { EplbInputError } from "../core/model/errors.js";
import { OutputWriteError } from "../io/atomic-write.js";
import { EplbFormatError } from "../io/errors.js";

/** Where a command writes; tests pass buffers, the binary passes process streams. */
export interface CliContext {
  /** Writes to standard output (the machine-readable result). */
  stdout(text: string): void;
  /** Writes to standard error (human summary, progress). */
  stderr(text: string): void;
  /** True when stderr is a terminal (progress bars only then). */
  readonly stderrIsTTY: boolean;
  /** Working directory that relative paths resolve against. */
  readonly cwd: string;
}

/** One `eplb <name>` subcommand. */
export interface CliCommand {
  readonly name: string;
  /** One line for `eplb --help`. */
  readonly summary: string;
  /** The full `eplb <name> --help` text. */
  readonly help: string;
  /**
   * Runs the command with the arguments after its name. A user mistake throws
   * {@link UsageError} or {@link EplbInputError}; the dispatcher prints it on one line and exits 2.
   */
  run(argv: string[], ctx: CliContext): Promise<void>;
}

/**
 * A mistake in how the CLI was called or in the files it was given (bad flag, unreadable or
 * malformed file). Printed as one line, exit code 2.
 *
 * @example
 * ```ts
 * throw new UsageError("--replicas is required"); // throws UsageError: --replicas is required
 * ```
 */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** True for the errors a user caused, which the CLI reports in one line with exit code 2. */
export function isUserError(error: unknown): error is Error {
  return (
    error instanceof UsageError ||
    error instanceof EplbInputError ||
    error instanceof EplbFormatError ||
    error instanceof OutputWriteError
  );
}
