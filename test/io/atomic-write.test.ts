/**
 * src/io/atomic-write.ts: an output is replaced only once the new content is complete, so a
 * failed write (disk full, file size limit, a crash) leaves the old file intact and no temporary
 * file behind; a link planted where an output goes is never written through.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { AtomicFile, OutputWriteError, writeFileAtomic } from "../../src/io/atomic-write.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";

const { dir } = tempFiles("eplb-atomic-");
/** A fresh folder per test, so "no temporary file left" looks at that test's files only. */
const folder = () => mkdtempSync(join(dir, "t-"));

const bytes = (s: string) => new TextEncoder().encode(s);

describe("writeFileAtomic", () => {
  test("creates a file, then replaces it; strings are UTF-8; nothing else is left", () => {
    const d = folder();
    const path = join(d, "plan.json");
    writeFileAtomic(path, "é{}");
    assert.deepEqual([...readFileSync(path)], [0xc3, 0xa9, 0x7b, 0x7d]);
    writeFileAtomic(path, new Uint8Array([1, 2, 3]));
    assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
    assert.deepEqual(readdirSync(d), ["plan.json"]);
  });

  test("a replaced file keeps its permission bits", () => {
    const d = folder();
    const path = join(d, "x.txt");
    writeFileSync(path, "old", { mode: 0o640 });
    writeFileAtomic(path, "new");
    assert.equal(statSync(path).mode & 0o777, 0o640);
  });

  test("a missing folder: OutputWriteError with the path, the reason and the code", () => {
    const d = folder();
    const path = join(d, "no-such", "out.json");
    assertRefused(
      () => writeFileAtomic(path, "{}"),
      OutputWriteError,
      `cannot write ${path}: no such folder`,
    );
    try {
      writeFileAtomic(path, "{}");
    } catch (e) {
      assert.ok(e instanceof OutputWriteError);
      assert.equal(e.code, "ENOENT");
      assert.equal(e.path, path);
      assert.equal(e.reason, "no such folder");
    }
  });

  test("a directory is refused, and left as it was", () => {
    const d = folder();
    assertRefused(
      () => writeFileAtomic(d, "{}"),
      OutputWriteError,
      `cannot write ${d}: it is a directory`,
    );
    assert.deepEqual(readdirSync(d), []);
  });

  test("a symbolic link onto a file, onto nothing or onto a folder is refused; the target is untouched", () => {
    const d = folder();
    const target = join(d, "target.txt");
    writeFileSync(target, "keep");
    const cases = [target, join(d, "missing.txt"), d];
    cases.forEach((to, i) => {
      const link = join(d, `link${i}`);
      symlinkSync(to, link);
      assertRefused(
        () => writeFileAtomic(link, "evil"),
        OutputWriteError,
        `cannot write ${link}: it is a symbolic link; eplb does not write through links (remove it or name its target)`,
      );
    });
    assert.equal(readFileSync(target, "utf8"), "keep");
    assert.deepEqual(readdirSync(d).sort(), ["link0", "link1", "link2", "target.txt"]);
  });

  test("a link onto a stream (/dev/null) is written through: a stream has nothing to replace", () => {
    const d = folder();
    const link = join(d, "sink");
    symlinkSync("/dev/null", link);
    writeFileAtomic(link, "discarded");
    writeFileAtomic("/dev/null", "discarded");
    assert.deepEqual(readdirSync(d), ["sink"]);
  });

  test("over the file size limit (ulimit -f): EFBIG, the old file intact, no temporary file", {
    skip: process.platform === "win32" ? "needs a POSIX shell" : false,
  }, () => {
    const d = folder();
    const path = join(d, "out.bin");
    writeFileSync(path, "old content");
    const module = fileURLToPath(new URL("../../src/io/atomic-write.js", import.meta.url));
    // A 1-block limit; SIGXFSZ ignored so the write fails with EFBIG instead of killing node.
    const script =
      `const { writeFileAtomic } = await import(${JSON.stringify(module)});` +
      `try { writeFileAtomic(${JSON.stringify(path)}, new Uint8Array(1 << 20)); console.log("written"); }` +
      ` catch (e) { console.log(e.name + "|" + e.code + "|" + e.message); }`;
    const r = spawnSync(
      "/bin/sh",
      [
        "-c",
        `trap '' XFSZ; ulimit -f 1; exec "${process.execPath}" --input-type=module -e '${script}'`,
      ],
      { encoding: "utf8" },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(
      r.stdout.trim(),
      `OutputWriteError|EFBIG|cannot write ${path}: file too large (file size limit)`,
    );
    assert.equal(readFileSync(path, "utf8"), "old content");
    assert.deepEqual(readdirSync(d), ["out.bin"]);
  });
});

describe("AtomicFile", () => {
  test("the destination is untouched until commit, then has every chunk in order", () => {
    const d = folder();
    const path = join(d, "out.bin");
    writeFileSync(path, "old");
    const f = new AtomicFile(path);
    f.write(bytes("head"));
    f.write(bytes("body"));
    assert.equal(readFileSync(path, "utf8"), "old");
    assert.equal(readdirSync(d).length, 2, "the temporary file sits beside the destination");
    f.commit();
    assert.equal(readFileSync(path, "utf8"), "headbody");
    assert.deepEqual(readdirSync(d), ["out.bin"]);
  });

  test("abort keeps the old content and removes the temporary file", () => {
    const d = folder();
    const path = join(d, "out.bin");
    writeFileSync(path, "old");
    const f = new AtomicFile(path);
    f.write(bytes("half"));
    f.abort();
    f.abort(); // twice is harmless
    assert.equal(readFileSync(path, "utf8"), "old");
    assert.deepEqual(readdirSync(d), ["out.bin"]);
  });

  test("a failing write removes the temporary file and names the destination", () => {
    const d = folder();
    const path = join(d, "out.bin");
    writeFileSync(path, "old");
    const f = new AtomicFile(path);
    closeSync((f as unknown as { fd: number }).fd); // the descriptor goes bad under the writer
    assert.throws(
      () => f.write(bytes("x")),
      (e: unknown) => e instanceof OutputWriteError && e.path === path && e.code === "EBADF",
    );
    assert.equal(readFileSync(path, "utf8"), "old");
    assert.deepEqual(readdirSync(d), ["out.bin"]);
    assert.throws(() => f.write(bytes("x")), /already closed/);
    assert.throws(() => f.commit(), /already closed/);
  });

  test("a failing rename (a folder took the destination's place) leaves no temporary file", () => {
    const d = folder();
    const path = join(d, "out.bin");
    const f = new AtomicFile(path);
    f.write(bytes("new"));
    mkdirSync(path);
    writeFileSync(join(path, "inside"), "x");
    assert.throws(() => f.commit(), OutputWriteError);
    assert.deepEqual(readdirSync(d), ["out.bin"]);
    assert.equal(statSync(path).isDirectory(), true);
    rmSync(path, { recursive: true });
  });

  test("two files open at once on one destination do not share a temporary name", () => {
    const d = folder();
    const path = join(d, "out.bin");
    const a = new AtomicFile(path);
    const b = new AtomicFile(path);
    a.write(bytes("a"));
    b.write(bytes("b"));
    assert.equal(readdirSync(d).length, 2);
    a.commit();
    b.commit();
    assert.equal(readFileSync(path, "utf8"), "b");
    assert.deepEqual(readdirSync(d), ["out.bin"]);
  });
});
