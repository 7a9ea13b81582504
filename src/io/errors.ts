import { readFileSync } from "node:fs";

/**
 * A file that cannot be read as what it claims to be: wrong magic, truncated, inconsistent
 * header, unsupported dtype, a pickle that asks for a forbidden global. The message names the
 * file and what is wrong; the CLI prints it in one line and exits 2.
 *
 * @example
 * ```ts
 * throw new EplbFormatError("loads.npy", "truncated: header says 4096 bytes of data, file has 100");
 * // throws EplbFormatError: loads.npy: truncated: header says 4096 bytes of data, file has 100
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

/**
 * The {@link EplbFormatError} for a file the system would not read: missing, a directory, no
 * permission, too large for one read.
 *
 * @example
 * ```ts
 * fileReadError("nope.npy", { code: "ENOENT" }).message; // "nope.npy: no such file"
 * ```
 */
export function fileReadError(path: string, error: unknown): EplbFormatError {
  const code = (error as { code?: string }).code;
  const reason =
    code === "ENOENT"
      ? "no such file"
      : code === "EISDIR"
        ? "is a directory"
        : code === "EACCES"
          ? "permission denied"
          : code === "ERR_FS_FILE_TOO_LARGE"
            ? "file is too large (over 2 GiB) to read"
            : `cannot read (${code ?? (error instanceof Error ? error.message.slice(0, 80) : "unknown error")})`;
  return new EplbFormatError(path, reason);
}

/**
 * Reads a whole file; a missing or unreadable file is an {@link EplbFormatError} naming the path
 * (see {@link fileReadError}).
 *
 * @param path the file
 * @throws EplbFormatError when the system will not read it
 * @example
 * ```ts
 * readFileBytes("loads.npy"); // Uint8Array
 * ```
 */
export function readFileBytes(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw fileReadError(path, error);
  }
}
