// A trace read one step at a time: what the simulator replays (a materialised trace is wrapped).
import { EplbInputError } from "../model/errors.js";
import type { LoadTrace } from "./estimators.js";

/**
 * A trace read one step at a time, so traces too large to hold (or generated on the fly) can be
 * replayed. The simulator reads steps in order `0, 1, 2, ...`, each exactly once.
 */
export interface TraceSource {
  readonly steps: number;
  readonly layers: number;
  readonly experts: number;
  /** Writes step `step` (`layers * experts` values, row-major) into `out` at `offset`. */
  readStep(step: number, out: Float64Array, offset: number): void;
}

/**
 * Wraps a materialised {@link LoadTrace} as a {@link TraceSource}.
 *
 * @example
 * ```ts
 * const src = traceSource({ steps: 2, layers: 1, experts: 2, data: new Int32Array([1, 2, 3, 4]) });
 * const out = new Float64Array(2);
 * src.readStep(1, out, 0); // out = Float64Array [3, 4]
 * ```
 */
export function traceSource(trace: LoadTrace): TraceSource {
  const { steps, layers, experts, data } = trace;
  const n = layers * experts;
  if (data.length !== steps * n) {
    throw new EplbInputError(
      "trace.data.length",
      data.length,
      `must equal steps * layers * experts (${steps} * ${layers} * ${experts} = ${steps * n})`,
    );
  }
  return new ArrayTraceSource(trace);
}

/** A class, not a closure per trace, so call sites stay monomorphic from one replay to the next. */
class ArrayTraceSource implements TraceSource {
  readonly steps: number;
  readonly layers: number;
  readonly experts: number;
  private readonly data: LoadTrace["data"];

  constructor(trace: LoadTrace) {
    this.steps = trace.steps;
    this.layers = trace.layers;
    this.experts = trace.experts;
    this.data = trace.data;
  }

  readStep(step: number, out: Float64Array, offset: number): void {
    const n = this.layers * this.experts;
    const base = step * n;
    const data = this.data;
    for (let i = 0; i < n; i++) out[offset + i] = data[base + i];
  }
}
