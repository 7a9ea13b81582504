import type { LoadMatrix } from "../../src/core/model/matrix.js";
import type { Placement } from "../../src/core/model/placement.js";
import type { Topology } from "../../src/core/model/topology.js";

/** Layer `l`'s largest GPU load of a placement (each replica carries load / count). */
export function gpuMax(loads: LoadMatrix, p: Placement, t: Topology, l: number): number {
  const { numReplicas: P, numExperts: E, slotsPerGpu: S } = t;
  const gpu = new Float64Array(t.numGpus);
  for (let s = 0; s < P; s++) {
    const e = p.phy2log[l * P + s];
    gpu[Math.floor(s / S)] += loads.data[l * E + e] / p.logcnt[l * E + e];
  }
  return Math.max(...gpu);
}
