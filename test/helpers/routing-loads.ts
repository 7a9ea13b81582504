import type { LoadMatrix } from "../../src/core/model/matrix.js";
import type { Placement } from "../../src/core/model/placement.js";
import type { Topology } from "../../src/core/model/topology.js";
import type { Routing } from "../../src/index.js";

/** Tokens counted into loads, `[layers][experts]`. */
export function loadsOf(r: Routing): LoadMatrix {
  const data = new Float64Array(r.layers * r.experts);
  for (let i = 0; i < r.topk.length; i++) {
    const e = r.topk[i];
    if (e >= 0) data[(Math.floor(i / r.k) % r.layers) * r.experts + e]++;
  }
  return { layers: r.layers, experts: r.experts, data };
}

/** Tokens `from .. to - 1` of a routing without ranks. */
export function tokenRange(r: Routing, from: number, to: number): Routing {
  const per = r.layers * r.k;
  return { ...r, tokens: to - from, topk: r.topk.slice(from * per, to * per) };
}

/** The first `n` tokens and the rest. */
export function split(r: Routing, n: number): [Routing, Routing] {
  return [tokenRange(r, 0, n), tokenRange(r, n, r.tokens)];
}

/** Largest GPU load of layer `l`. */
export function gpuMax(loads: LoadMatrix, p: Placement, t: Topology, l: number): number {
  const { numReplicas: P, numExperts: E, slotsPerGpu: S } = t;
  const gpu = new Float64Array(t.numGpus);
  for (let s = 0; s < P; s++) {
    const e = p.phy2log[l * P + s];
    gpu[Math.floor(s / S)] += loads.data[l * E + e] / p.logcnt[l * E + e];
  }
  return Math.max(...gpu);
}
