import type { Routing } from "../../src/core/routing/routing.js";
import { synthRouting } from "../../src/core/traces/synth-routing.js";
import { loadsOf } from "./routing-loads.js";

/**
 * Synthetic routing of `steps` steps (each step's arrays copied) and the load trace that counts
 * its choices, so loads and routing agree step by step.
 */
export function routedTrace(o: {
  steps: number;
  tokens: number;
  layers: number;
  experts: number;
  k: number;
  seed: number;
}) {
  const src = synthRouting(o);
  const steps: Routing[] = [];
  const n = o.layers * o.experts;
  const data = new Float64Array(o.steps * n);
  for (let s = 0; s < o.steps; s++) {
    const r = src.readStep(s);
    steps.push({ ...r, topk: r.topk.slice() });
    data.set(loadsOf(r).data, s * n);
  }
  return { trace: { steps: o.steps, layers: o.layers, experts: o.experts, data }, steps };
}
