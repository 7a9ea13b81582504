import { Buffer } from "node:buffer";
import {
  accessSync,
  closeSync,
  constants,
  fsyncSync,
  lstatSync,
  openSync,
  renameSync,
  type Stats,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";

/**
 * Why an output could not be written: the path is a symbolic link onto a file (eplb never writes
 * through a link), or the system refused (no space, no permission, file size limit). `code` is
 * the system's error code when there is one.
 *
 * @example
 * ```ts
 * try { writeFileAtomic("out.json", "{}"); } catch (e) { if (e instanceof OutputWriteError) console.log(e.code); }
 * ```
 */
export class OutputWriteError extends Error {
  readonly path: string;
  /** Why, without the path ("no space left on the device"). */
  readonly reason: string;
  readonly code: string | undefined;
  constructor(path: string, reason: string, code?: string) {
    super(`cannot write ${path}: ${reason}`);
    this.name = "OutputWriteError";
    this.path = path;
    this.reason = reason;
    this.code = code;
  }
}

let counter = 0;

/**
 * A file written under a temporary name in the destination's folder and renamed onto it only
 * when complete (`commit`), so a failed or interrupted write (disk full, `ulimit -f`, a crash)
 * leaves the previous file intact and never a half-written one. A path that is a device or a
 * pipe (`/dev/stdout`, `/dev/null`, a FIFO) is written directly: a stream has nothing to
 * replace. A symbolic link onto a regular file (or onto nothing) is refused, so that a link
 * planted where an output goes cannot redirect the write onto its target.
 *
 * @example
 * ```ts
 * const header = new TextEncoder().encode("head"), body = new TextEncoder().encode("body");
 * const f = new AtomicFile("out.bin");
 * try { f.write(header); f.write(body); f.commit(); } catch (e) { f.abort(); throw e; }
 * ```
 */
export class AtomicFile {
  readonly path: string;
  private readonly temp: string | null;
  private fd: number | null;

  /**
   * @param path the destination
   * @throws OutputWriteError when the path is a link onto a file, or the temporary file cannot be
   *   created
   */
  constructor(path: string) {
    this.path = path;
    const target = destination(path);
    try {
      if (target === "stream") {
        this.temp = null;
        this.fd = openSync(path, "w");
      } else {
        counter++;
        this.temp = join(dirname(path), `.${basename(path)}.${process.pid}.${counter}.tmp`);
        // The replaced file's permission bits carry over (the umask still applies).
        this.fd = openSync(this.temp, "wx", target ? target.mode & 0o777 : 0o666);
      }
    } catch (error) {
      throw systemError(path, error);
    }
  }

  /** Appends bytes; on failure the temporary file is removed and the destination untouched. */
  write(bytes: Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.path}: already closed`);
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(this.fd, bytes, done, bytes.length - done);
    } catch (error) {
      this.abort();
      throw systemError(this.path, error);
    }
  }

  /** Flushes, closes and renames the temporary file onto the destination. */
  commit(): void {
    if (this.fd === null) throw new Error(`${this.path}: already closed`);
    const fd = this.fd;
    this.fd = null;
    try {
      if (this.temp !== null) fsyncSync(fd);
      closeSync(fd);
      if (this.temp !== null) renameSync(this.temp, this.path);
    } catch (error) {
      this.removeTemp();
      throw systemError(this.path, error);
    }
  }

  /** Closes and removes the temporary file (the destination keeps its old content). */
  abort(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        // already unusable; removing the temporary file is what matters
      }
      this.fd = null;
    }
    this.removeTemp();
  }

  private removeTemp(): void {
    if (this.temp === null) return;
    try {
      unlinkSync(this.temp);
    } catch {
      // gone already
    }
  }
}

/**
 * Writes a whole file atomically (see {@link AtomicFile}): the old content stays until the new
 * one is complete.
 *
 * @param path the destination
 * @param data the content (a string is written as UTF-8)
 * @throws OutputWriteError when the path is a link onto a file or the system refuses the write
 * @example
 * ```ts
 * const plan = rebalanceExperts([[10, 40, 20, 30]], 6, 1, 1, 2);
 * writeFileAtomic("plan.json", JSON.stringify(plan));
 * ```
 */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const file = new AtomicFile(path);
  file.write(typeof data === "string" ? Buffer.from(data, "utf8") : data);
  file.commit();
}

/**
 * What is at `path`: nothing (null), a regular file (its stats, to keep its mode) or a stream
 * (device, pipe, socket) that is written directly. A symbolic link is followed only onto a
 * stream; onto a file or nothing it is refused.
 */
function destination(path: string): Stats | null | "stream" {
  let link: Stats;
  try {
    link = lstatSync(path);
  } catch {
    return null;
  }
  let target: Stats | null = link;
  if (link.isSymbolicLink()) {
    try {
      target = statSync(path);
    } catch {
      target = null;
    }
    if (!target || target.isFile() || target.isDirectory()) {
      throw new OutputWriteError(
        path,
        "it is a symbolic link; eplb does not write through links (remove it or name its target)",
      );
    }
  }
  if (target.isDirectory()) throw new OutputWriteError(path, "it is a directory", "EISDIR");
  if (!target.isFile()) return "stream";
  // A rename would replace a read-only file the user protected: refuse as a write would.
  try {
    accessSync(path, constants.W_OK);
  } catch {
    throw new OutputWriteError(path, "permission denied", "EACCES");
  }
  return target;
}

function systemError(path: string, error: unknown): Error {
  if (error instanceof OutputWriteError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const reasons: Record<string, string> = {
    ENOSPC: "no space left on the device",
    EDQUOT: "disk quota exceeded",
    EFBIG: "file too large (file size limit)",
    EACCES: "permission denied",
    EPERM: "operation not permitted",
    ENOENT: "no such folder",
    ENOTDIR: "a parent is not a folder",
    EROFS: "read-only file system",
    EISDIR: "it is a directory",
  };
  const reason =
    (code && reasons[code]) ?? code ?? (error instanceof Error ? error.message : String(error));
  return new OutputWriteError(path, reason, code);
}
