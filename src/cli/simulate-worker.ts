// A worker thread of `eplb simulate --sweep`: it receives the trace once (a SharedArrayBuffer of
// typed array, never copied) and runs the configurations the main thread hands it, one at a time.
import { parentPort, workerData } from "node:worker_threads";
import { simulate } from "../core/traces/simulate.js";
import {
  type PlainConfig,
  type SharedTrace,
  sharedView,
  sweepRow,
  type WorkerReply,
} from "./sweep.js";

const shared = workerData as SharedTrace;
const trace = {
  steps: shared.steps,
  layers: shared.layers,
  experts: shared.experts,
  data: sharedView(shared),
};
const port = parentPort;
if (port) {
  port.on("message", ({ id, config }: { id: number; config: PlainConfig }) => {
    const send = (m: WorkerReply) => port.postMessage(m);
    try {
      const r = simulate(trace, {
        ...config,
        series: false,
        onProgress: (done) => send({ type: "progress", id, done }),
      });
      send({ type: "done", id, row: sweepRow(r) });
    } catch (error) {
      send({ type: "error", id, message: error instanceof Error ? error.message : String(error) });
    }
  });
}
