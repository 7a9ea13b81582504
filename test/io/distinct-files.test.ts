/**
 * src/io/distinct-files.ts: a file given twice (under any spelling) would count its loads or
 * tokens twice, a silent error in every figure; it is refused naming the second mention.
 */
import { join, resolve } from "node:path";
import { describe, test } from "node:test";
import { requireDistinctFiles } from "../../src/io/distinct-files.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { assertRefused } from "../helpers/refused.js";

describe("requireDistinctFiles", () => {
  test("distinct files pass, and so does no file or one", () => {
    requireDistinctFiles([], "it");
    requireDistinctFiles(["a.npy"], "it");
    requireDistinctFiles(["a.npy", "b.npy", "dir/a.npy"], "its tokens");
  });

  test("the same path twice is refused, naming the second spelling and what is counted", () => {
    assertRefused(
      () => requireDistinctFiles(["a.npy", "b.npy", "a.npy"], "its tokens"),
      EplbFormatError,
      "a.npy: is given twice: its tokens would be counted twice",
    );
  });

  test("other spellings of one file are the same file: ./, an absolute path, x/../", () => {
    for (const twin of ["./a.npy", resolve("a.npy"), join("sub", "..", "a.npy"), "a.npy/"]) {
      assertRefused(
        () => requireDistinctFiles(["a.npy", twin], "it"),
        EplbFormatError,
        `${twin}: is given twice: it would be counted twice`,
      );
    }
  });
});
