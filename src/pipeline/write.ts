// The write stage of `eplb synth`: a trace written step by step to a .npy file, so that a trace
// larger than memory never is in memory.
import type { TraceSource } from "../core/traces/simulate.js";
import { type NpyWriteDType, NpyWriter } from "../io/npy-write.js";

/**
 * Writes a trace `[steps, layers, experts]` to a `.npy` file, a batch of steps at a time (a few
 * MB per write call, not one step's 60 kB), through a temporary file that replaces `path` only
 * when complete: a failed write leaves no partial file.
 *
 * @param trace the trace, read step by step (`readStep`)
 * @param path where to write (absolute, or relative to the process's working directory)
 * @param dtype the element type written
 * @param onProgress told the steps written so far and the total, after each batch
 * @throws OutputWriteError when the file cannot be created or written (its `reason` says why)
 * @example
 * ```ts
 * const trace = synthTrace({ steps: 2000, layers: 58, experts: 256, seed: 1 });
 * writeTraceNpy(trace, "/tmp/trace.npy", "int64");
 * ```
 */
export function writeTraceNpy(
  trace: TraceSource,
  path: string,
  dtype: NpyWriteDType,
  onProgress: (done: number, total: number) => void = () => {},
): void {
  const { steps, layers, experts } = trace;
  const writer = new NpyWriter(path, dtype, [steps, layers, experts]);
  const n = layers * experts;
  // Steps are written in batches so each write call moves a few MB, not 60 KB.
  const batch = Math.max(1, Math.min(steps, Math.floor(4_000_000 / n)));
  const buf = new Float64Array(batch * n);
  try {
    for (let t = 0; t < steps; t += batch) {
      const len = Math.min(batch, steps - t);
      for (let j = 0; j < len; j++) trace.readStep(t + j, buf, j * n);
      writer.write(len === batch ? buf : buf.subarray(0, len * n));
      onProgress(t + len, steps);
    }
    writer.close();
  } catch (error) {
    writer.abort();
    throw error;
  }
}
