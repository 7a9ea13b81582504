import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { synthTrace } from "../../src/core/traces/synth.js";
import { OutputWriteError } from "../../src/io/atomic-write.js";
import { readNpy } from "../../src/io/npy.js";
import { writeTraceNpy } from "../../src/pipeline/write.js";
import { tempFiles } from "../helpers/temp.js";

const { dir } = tempFiles("eplb-pipeline-write-");

describe("writeTraceNpy", () => {
  test("every step, in order, in several batches, with the progress after each", () => {
    // 64 x 256 values per step: 4e6 / 16384 = 244 steps per batch, so 600 steps take 3 batches.
    const trace = synthTrace({ steps: 600, layers: 64, experts: 256, seed: 9 });
    const path = join(dir, "trace.npy");
    const progress: number[] = [];
    writeTraceNpy(trace, path, "int64", (done, total) => {
      assert.equal(total, 600);
      progress.push(done);
    });
    assert.deepEqual(progress, [244, 488, 600]);
    const t = readNpy(readFileSync(path), path);
    assert.deepEqual(t.shape, [600, 64, 256]);
    const n = 64 * 256;
    const step = new Float64Array(n);
    for (const s of [0, 243, 244, 599]) {
      trace.readStep(s, step, 0);
      assert.deepEqual(Array.from(t.data.subarray(s * n, (s + 1) * n)), Array.from(step));
    }
  });

  test("a path that cannot be written: OutputWriteError, and no file left behind", () => {
    const trace = synthTrace({ steps: 3, layers: 1, experts: 4, seed: 1 });
    const path = join(dir, "no-such-folder", "t.npy");
    assert.throws(() => writeTraceNpy(trace, path, "float32"), OutputWriteError);
    assert.equal(existsSync(path), false);
    assert.ok(readdirSync(dir).every((name) => !name.includes(".tmp")));
  });
});
