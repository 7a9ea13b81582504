import type { LoadMatrix } from "../model/matrix.js";
import { type Placement, placementFromPhy2log } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import type { MigrationMetrics } from "./metrics.js";

// Empty slots (-1 in a previous placement, as vLLM's elastic expert parallelism writes them):
// how migratePlacement starts from such a placement and measures against it.
/**
 * A copy of `given` with every empty slot (-1) filled, slot by slot in order, with the expert of
 * largest load per replica among those not yet on the slot's GPU (any expert when all are):
 * water-filling, as the reference's replication does, so the filled placement is a fair start.
 *
 * @param loads the loads the rebalance plans for
 * @param given the previous placement, `-1` in empty slots (rank `-1`)
 * @param slotsPerGpu slots of one GPU
 * @example
 * ```ts
 * const given = placementFromPhy2log([[0, 1, 2, -1, 3, 4, 5, -1]], 6, "previous", true);
 * fillEmptySlots(toLoadMatrix([[50, 40, 30, 20, 10, 5]]), given, 4).phy2log;
 * // Int32Array [0, 1, 2, 3, 3, 4, 5, 0]
 * ```
 */
export function fillEmptySlots(
  loads: LoadMatrix,
  given: Placement,
  slotsPerGpu: number,
): Placement {
  const { layers, numReplicas: P, numExperts: E } = given;
  const rows: Int32Array[] = new Array(layers);
  for (let l = 0; l < layers; l++) {
    const row = given.phy2log.slice(l * P, (l + 1) * P);
    const count = given.logcnt.slice(l * E, (l + 1) * E);
    for (let s = 0; s < P; s++) {
      if (row[s] >= 0) continue;
      const first = s - (s % slotsPerGpu);
      let best = -1;
      let bestOnGpu = true;
      let bestKey = -1;
      for (let e = 0; e < E; e++) {
        let onGpu = false;
        for (let j = first; j < first + slotsPerGpu; j++) if (row[j] === e) onGpu = true;
        const key = loads.data[l * E + e] / count[e];
        if ((bestOnGpu && !onGpu) || (bestOnGpu === onGpu && key > bestKey)) {
          best = e;
          bestOnGpu = onGpu;
          bestKey = key;
        }
      }
      row[s] = best;
      count[best]++;
    }
    rows[l] = row;
  }
  return placementFromPhy2log(rows, E, "previous");
}

/**
 * With empty slots in the previous placement, the changes and the load before are those of the
 * placement as given: a filled slot is a change (a weight copy), an empty one serves nothing.
 * Overwrites `metrics.slotsChanged`, `slotsChangedPerLayer`, `maxLoadBefore` and
 * `beforeOverFresh` (`maxLoadFresh` must be set).
 *
 * @param loads the loads the rebalance planned for
 * @param given the previous placement as given, with its empty slots
 * @param out the new placement
 * @param topology the cluster shape
 * @param metrics the migration's figures, updated in place
 * @example
 * ```ts
 * const topology = makeTopology(6, 8, 1, 1, 2);
 * const loads = toLoadMatrix([[30, 10, 20, 5, 15, 25]]);
 * const given = toPreviousPlacement([[0, 1, 2, -1, 3, 4, 5, -1]], 1, topology, false);
 * const filled = fillEmptySlots(loads, given, topology.slotsPerGpu);
 * filled.phy2log; // Int32Array [0, 1, 2, 5, 3, 4, 5, 0]
 * const m = migratePlacement(loads, filled, planBalanced(loads, topology), topology);
 * m.metrics.slotsChanged; // 2 (against the filled placement)
 * recountFromGiven(loads, given, m.placement, topology, m.metrics);
 * m.metrics.slotsChanged; // 4 (the two filled slots count too)
 * ```
 */
export function recountFromGiven(
  loads: LoadMatrix,
  given: Placement,
  out: Placement,
  topology: Topology,
  metrics: MigrationMetrics,
): void {
  const { numReplicas: P, numExperts: E, numGpus: G, slotsPerGpu: S } = topology;
  const L = loads.layers;
  const gpu = new Float64Array(G);
  metrics.slotsChanged = 0;
  metrics.beforeOverFresh = 0;
  for (let l = 0; l < L; l++) {
    let changed = 0;
    gpu.fill(0);
    for (let s = 0; s < P; s++) {
      if (out.phy2log[l * P + s] !== given.phy2log[l * P + s]) changed++;
      const e = given.phy2log[l * P + s];
      if (e >= 0) gpu[Math.floor(s / S)] += loads.data[l * E + e] / given.logcnt[l * E + e];
    }
    metrics.slotsChanged += changed;
    metrics.slotsChangedPerLayer[l] = changed;
    let max = 0;
    for (let g = 0; g < G; g++) if (gpu[g] > max) max = gpu[g];
    metrics.maxLoadBefore[l] = max;
    const fresh = metrics.maxLoadFresh[l];
    metrics.beforeOverFresh += (fresh > 0 ? max / fresh : 1) / L;
  }
}
