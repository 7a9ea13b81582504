import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { Worker } from "node:worker_threads";
import { simulate } from "../../src/core/traces/simulate.js";
import { synthesizeTrace } from "../../src/core/traces/synth.js";
import {
  type PlainConfig,
  type SharedTrace,
  sharedView,
  sweepRow,
  type WorkerReply,
} from "../../src/pipeline/sweep.js";
import { smallSimulation } from "../helpers/small-cases.js";

/**
 * The worker is driven here as runSweep drives it (one trace in shared memory, configurations by
 * message), without the pool around it, so what it answers is checked message by message.
 */
const workerUrl = new URL("../../src/pipeline/sweep-worker.js", import.meta.url);
const trace = synthesizeTrace({ steps: 60, layers: 2, experts: 8, seed: 9, drift: 0.03 });

function shared(data: Int32Array | Float64Array): SharedTrace {
  const dtype = data instanceof Int32Array ? "int32" : "float64";
  const buffer = new SharedArrayBuffer(data.byteLength);
  sharedView({ buffer, dtype }).set(data);
  return { steps: trace.steps, layers: trace.layers, experts: trace.experts, buffer, dtype };
}

const workers: Worker[] = [];
after(() => Promise.all(workers.map((w) => w.terminate())));

/** Starts a worker on `data` and returns a function sending one configuration and collecting the replies up to its last. */
function start(
  data: Int32Array | Float64Array,
): (id: number, config: PlainConfig) => Promise<WorkerReply[]> {
  const worker = new Worker(workerUrl, { workerData: shared(data) });
  workers.push(worker);
  return (id, config) =>
    new Promise((resolve, reject) => {
      const replies: WorkerReply[] = [];
      const onMessage = (m: WorkerReply) => {
        replies.push(m);
        if (m.type !== "progress") {
          worker.off("message", onMessage);
          resolve(replies);
        }
      };
      worker.on("message", onMessage);
      worker.once("error", reject);
      worker.postMessage({ id, config });
    });
}

describe("sweep-worker", () => {
  it("answers a configuration with the row the main thread computes, under its id", async () => {
    const run = start(trace.data as Int32Array);
    const replies = await run(7, smallSimulation);
    const last = replies.at(-1);
    assert.ok(last && last.type === "done", JSON.stringify(last));
    assert.equal(last.id, 7);
    assert.deepEqual(last.row, sweepRow(simulate(trace, { ...smallSimulation, series: false })));
    // Progress: under the same id, never backwards, never past the trace.
    const progress = replies.filter((m) => m.type === "progress");
    let done = 0;
    for (const m of progress) {
      assert.equal(m.id, 7);
      assert.ok(m.done >= done && m.done <= trace.steps, `${m.done}`);
      done = m.done;
    }
  });

  it("sends a failing configuration's message back and serves the next one", async () => {
    const run = start(trace.data as Int32Array);
    const bad = { ...smallSimulation, numGpus: 5 };
    let expected = "";
    try {
      simulate(trace, { ...bad, series: false });
    } catch (error) {
      expected = (error as Error).message;
    }
    assert.notEqual(expected, "", "the configuration is refused on the main thread too");
    const replies = await run(3, bad);
    assert.deepEqual(replies.at(-1), { type: "error", id: 3, message: expected });
    const next = await run(4, { ...smallSimulation, interval: 30 });
    assert.equal(next.at(-1)?.type, "done");
    assert.equal(next.at(-1)?.id, 4);
  });

  it("reads a float64 trace as float64 (fractional loads are not truncated)", async () => {
    const floats = Float64Array.from(trace.data, (v, i) => v + ((i * 37) % 10) / 10);
    const run = start(floats);
    const last = (await run(0, smallSimulation)).at(-1);
    assert.ok(last && last.type === "done");
    const want = sweepRow(
      simulate({ ...trace, data: floats }, { ...smallSimulation, series: false }),
    );
    assert.deepEqual(last.row, want);
    assert.notDeepEqual(
      want,
      sweepRow(simulate(trace, { ...smallSimulation, series: false })),
      "the fractions matter",
    );
  });
});
