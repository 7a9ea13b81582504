/**
 * A file that cannot be read as what it claims to be: wrong magic, truncated, inconsistent
 * header, unsupported dtype, a pickle that asks for a forbidden global. The message names the
 * file and what is wrong; the CLI prints it in one line and exits 2.
 *
 * @example
 * ```ts
 * throw new EplbFormatError("loads.npy", "truncated: header says 4096 bytes of data, file has 100");
 * // message: "loads.npy: truncated: header says 4096 bytes of data, file has 100"
 * ```
 */
export class EplbFormatError extends Error {
  readonly file: string;
  readonly problem: string;
  constructor(file: string, problem: string) {
    super(`${file}: ${problem}`);
    this.name = "EplbFormatError";
    this.file = file;
    this.problem = problem;
  }
}
