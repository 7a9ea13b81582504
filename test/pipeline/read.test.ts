import assert from "node:assert/strict";
import { basename, dirname, join } from "node:path";
import { describe, test } from "node:test";
import { EplbInputError } from "../../src/core/model/errors.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { writeNpy } from "../../src/io/npy-write.js";
import { openSimulationTrace, recordedPlanShape } from "../../src/pipeline/read.js";
import { tempFiles } from "../helpers/temp.js";

const { dir, file } = tempFiles("eplb-pipeline-read-");
// 3 steps, 1 layer, 2 experts.
const values = [3, 1, 2, 2, 1, 3];
const npyPath = join(dir, "trace.npy");
writeNpy(npyPath, values, [3, 1, 2], "int64");
const jsonPath = file(
  "trace.json",
  JSON.stringify({ logical_count: [[[3, 1]], [[2, 2]], [[1, 3]]] }),
);

function allSteps(trace: ReturnType<typeof openSimulationTrace>["trace"]): number[] {
  if (!("readStep" in trace)) return Array.from(trace.data);
  const out: number[] = [];
  const step = new Float64Array(trace.layers * trace.experts);
  for (let t = 0; t < trace.steps; t++) {
    trace.readStep(t, step, 0);
    out.push(...step);
  }
  return out;
}

describe("openSimulationTrace", () => {
  test("one .npy: streamed step by step for one simulation, closed by close()", () => {
    const opened = openSimulationTrace([basename(npyPath)], dirname(npyPath), {});
    assert.ok("readStep" in opened.trace);
    assert.deepEqual(allSteps(opened.trace), values);
    opened.close();
  });

  test("whole: the same steps in shared memory, as a sweep's workers need them", () => {
    const opened = openSimulationTrace([npyPath], "/", {}, { whole: true });
    assert.ok(!("readStep" in opened.trace));
    assert.ok(opened.trace.data.buffer instanceof SharedArrayBuffer);
    assert.deepEqual(allSteps(opened.trace), values);
    opened.close();
  });

  test("other formats are read whole; a step slice applies", () => {
    const opened = openSimulationTrace([jsonPath], "/", { steps: "1:" });
    assert.equal(opened.trace.steps, 2);
    assert.deepEqual(allSteps(opened.trace), values.slice(2));
  });

  test("options given as a function are asked for only once the file is known to exist", () => {
    let asked = 0;
    const options = () => {
      asked++;
      return {};
    };
    assert.throws(() => openSimulationTrace(["missing.npy"], dir, options), EplbFormatError);
    assert.equal(asked, 0);
    openSimulationTrace([jsonPath], dir, options).close();
    assert.equal(asked, 1);
  });

  test("several files must be SGLang rank dumps; a slice selecting nothing is refused", () => {
    assert.throws(() => openSimulationTrace([jsonPath, jsonPath], "/", {}), EplbFormatError);
    assert.throws(() => openSimulationTrace([jsonPath], "/", { steps: "5:" }), EplbInputError);
  });
});

describe("recordedPlanShape", () => {
  test("the figures an eplb plan JSON records beside its placement", () => {
    const path = file(
      "plan.json",
      JSON.stringify({
        phy2log: [[0, 1]],
        metrics: { gpus: 8, nodes: 2, groups: 4, policy: "deepseek", mode: "hierarchical" },
      }),
    );
    assert.deepEqual(recordedPlanShape(basename(path), dir), {
      gpus: 8,
      nodes: 2,
      groups: 4,
      policy: "deepseek",
      mode: "hierarchical",
    });
  });

  test("nothing from other files, broken JSON, or figures that are not positive integers", () => {
    assert.deepEqual(recordedPlanShape(npyPath, "/"), {});
    assert.deepEqual(recordedPlanShape(file("broken.json", "{"), "/"), {});
    assert.deepEqual(recordedPlanShape(file("none.json", "[[0, 1]]"), "/"), {});
    const odd = recordedPlanShape(file("odd.json", '{"metrics": {"gpus": 0, "nodes": 1.5}}'), "/");
    assert.equal(odd.gpus, undefined);
    assert.equal(odd.nodes, undefined);
  });
});
