/**
 * src/io/errors.ts: a file that cannot be read is one EplbFormatError whose message starts with
 * the path and says why in words (the CLI prints it and exits 2), never a raw system error.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbFormatError, fileReadError, readFileBytes } from "../../src/io/errors.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";

const { dir, file } = tempFiles("eplb-errors-");

describe("EplbFormatError", () => {
  test("the message is `file: problem`, and both parts are kept for callers", () => {
    const e = new EplbFormatError("loads.npy", "truncated");
    assert.ok(e instanceof Error);
    assert.equal(e.name, "EplbFormatError");
    assert.equal(e.message, "loads.npy: truncated");
    assert.equal(e.file, "loads.npy");
    assert.equal(e.problem, "truncated");
  });
});

describe("fileReadError", () => {
  test("each system code the CLI meets has a reason in words", () => {
    const cases: [string, string][] = [
      ["ENOENT", "no such file"],
      ["EISDIR", "is a directory"],
      ["EACCES", "permission denied"],
      ["ERR_FS_FILE_TOO_LARGE", "file is too large (over 2 GiB) to read"],
      ["EMFILE", "cannot read (EMFILE)"],
    ];
    for (const [code, reason] of cases) {
      const e = fileReadError("f.pt", { code });
      assert.ok(e instanceof EplbFormatError);
      assert.equal(e.message, `f.pt: ${reason}`);
      assert.equal(e.file, "f.pt");
    }
  });

  test("without a code: the error's message cut to 80 characters, or `unknown error`", () => {
    assert.equal(fileReadError("f", new Error("boom")).message, "f: cannot read (boom)");
    const long = "x".repeat(200);
    assert.equal(fileReadError("f", new Error(long)).message, `f: cannot read (${"x".repeat(80)})`);
    assert.equal(fileReadError("f", "a string").message, "f: cannot read (unknown error)");
  });
});

describe("readFileBytes", () => {
  test("the whole file's bytes", () => {
    const path = file("b.bin", new Uint8Array([0, 1, 255]));
    assert.deepEqual([...readFileBytes(path)], [0, 1, 255]);
  });

  test("a missing file and a directory are EplbFormatErrors naming the path", () => {
    const missing = `${dir}/nope.npy`;
    assertRefused(() => readFileBytes(missing), EplbFormatError, `${missing}: no such file`);
    assertRefused(() => readFileBytes(dir), EplbFormatError, `${dir}: is a directory`);
  });
});
