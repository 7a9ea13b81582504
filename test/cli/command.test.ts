/**
 * src/cli/command.ts: which errors are the user's (one line, exit 2) and which are eplb's own
 * bugs (exit 70, reported as such): a wrong split would hide a bug or blame the user.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { isUserError, UsageError } from "../../src/cli/command.js";
import { EplbInputError } from "../../src/index.js";
import { OutputWriteError } from "../../src/io/atomic-write.js";
import { EplbFormatError } from "../../src/io/errors.js";

test("bad flags, bad inputs, bad files and unwritable outputs are the user's", () => {
  const usage = new UsageError("--replicas is required");
  assert.equal(usage.name, "UsageError");
  assert.equal(usage.message, "--replicas is required");
  for (const e of [
    usage,
    new EplbInputError("numGpus", 6, "must divide numReplicas (16)"),
    new EplbFormatError("x.pt", "truncated"),
    new OutputWriteError("out.json", "is a symbolic link"),
  ]) {
    assert.equal(isUserError(e), true, e.constructor.name);
  }
});

test("anything else is a bug of eplb's, not the user's", () => {
  for (const e of [
    new TypeError("x is undefined"),
    new RangeError("bad"),
    new Error("plain"),
    "text",
    null,
  ]) {
    assert.equal(isUserError(e), false, String(e));
  }
});
