import type { Topology } from "../model/topology.js";

/** Reusable buffers for {@link solveAssignment}; grows to the largest `n` seen. */
export class AssignmentWorkspace {
  u = new Float64Array(0);
  v = new Float64Array(0);
  minv = new Float64Array(0);
  p = new Int32Array(0);
  way = new Int32Array(0);
  used = new Uint8Array(0);

  ensure(n: number): void {
    if (this.u.length < n + 1) {
      this.u = new Float64Array(n + 1);
      this.v = new Float64Array(n + 1);
      this.minv = new Float64Array(n + 1);
      this.p = new Int32Array(n + 1);
      this.way = new Int32Array(n + 1);
      this.used = new Uint8Array(n + 1);
    }
  }
}

/**
 * Minimum-cost perfect assignment of `n` rows to `n` columns (the Hungarian method with
 * potentials, O(n^3)). `cost[r * n + c]` is the cost of giving column `c` to row `r`; writes
 * `assignment[r]` (the column of row `r`) and returns the total cost. Deterministic: equal-cost
 * alternatives resolve by index order.
 *
 * @example
 * ```ts
 * const a = new Int32Array(3);
 * solveAssignment(new Float64Array([4, 1, 3, 2, 0, 5, 3, 2, 2]), 3, a); // 5
 * // a = Int32Array [1, 0, 2]
 * ```
 */
export function solveAssignment(
  cost: ArrayLike<number>,
  n: number,
  assignment: Int32Array,
  ws: AssignmentWorkspace = new AssignmentWorkspace(),
): number {
  ws.ensure(n);
  const { u, v, minv, p, way, used } = ws;
  u.fill(0, 0, n + 1);
  v.fill(0, 0, n + 1);
  p.fill(0, 0, n + 1);
  way.fill(0, 0, n + 1);
  // Rows and columns are 1-based here; column 0 is the virtual start of each augmenting path.
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    minv.fill(Number.POSITIVE_INFINITY, 0, n + 1);
    used.fill(0, 0, n + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0];
      let delta = Number.POSITIVE_INFINITY;
      let j1 = 0;
      const rowBase = (i0 - 1) * n - 1;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost[rowBase + j] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0 !== 0);
  }
  let total = 0;
  for (let j = 1; j <= n; j++) {
    assignment[p[j] - 1] = j - 1;
    total += cost[(p[j] - 1) * n + j - 1];
  }
  return total;
}

/** Reusable buffers for {@link relabelLayer}, sized for one topology. */
export class RelabelWorkspace {
  readonly topology: Topology;
  /** `overlap[newGpu * G + oldGpu]`: slots the two GPUs' expert multisets share. */
  readonly overlap: Float64Array;
  /** Negated overlaps of one node pair or of all GPUs: the assignment's cost matrix. */
  readonly cost: Float64Array;
  readonly nodeCost: Float64Array;
  /** `nodeGpuMatch[(newNode * N + oldNode) * gpn + i]`: old GPU (in node) of new GPU `i`. */
  readonly nodeGpuMatch: Int32Array;
  readonly gpuTarget: Int32Array;
  readonly nodeTarget: Int32Array;
  readonly match: Int32Array;
  readonly tally: Int32Array;
  readonly taken: Uint8Array;
  readonly assignment = new AssignmentWorkspace();

  constructor(topology: Topology) {
    this.topology = topology;
    const { numGpus: G, numNodes: N, gpusPerNode: gpn, numExperts: E } = topology;
    const scope = topology.hierarchical ? gpn : G;
    this.overlap = new Float64Array(G * G);
    this.cost = new Float64Array(scope * scope);
    this.nodeCost = new Float64Array(N * N);
    this.nodeGpuMatch = new Int32Array(topology.hierarchical ? N * N * gpn : 0);
    this.gpuTarget = new Int32Array(G);
    this.nodeTarget = new Int32Array(N);
    this.match = new Int32Array(Math.max(G, N));
    this.tally = new Int32Array(E);
    this.taken = new Uint8Array(topology.slotsPerGpu);
  }
}

/**
 * Relabels one layer of a fresh plan onto the previous placement so that as many slots as
 * possible keep their expert: GPUs are permuted (in hierarchical mode whole nodes are permuted
 * and GPUs only within a node, so every group stays on one node) and slots within a GPU are
 * reordered. Only labels change, so every GPU's and node's load is the fresh plan's. Writes the
 * relabelled layer to `out` at `outOffset` and returns how many slots differ from `previous`.
 *
 * @example
 * ```ts
 * const t = makeTopology(4, 4, 1, 1, 2);
 * const out = new Int32Array(4);
 * relabelLayer(new Int32Array([0, 1, 2, 3]), 0, new Int32Array([3, 1, 0, 2]), 0, t, out, 0,
 *   new RelabelWorkspace(t)); // 2
 * // out = Int32Array [3, 1, 2, 0]: experts 1 and 2 keep their slots, 3 and 0 move in
 * ```
 */
export function relabelLayer(
  previous: Int32Array,
  previousOffset: number,
  fresh: Int32Array,
  freshOffset: number,
  topology: Topology,
  out: Int32Array,
  outOffset: number,
  ws: RelabelWorkspace,
): number {
  const { numGpus: G, numNodes: N, gpusPerNode: gpn, slotsPerGpu: S } = topology;
  const { overlap, tally, gpuTarget } = ws;
  // Multiset overlap of every (fresh GPU, previous GPU) pair: tally the previous GPU's experts,
  // consume them with the fresh GPU's, then give the consumed ones back.
  const consumed = ws.taken;
  for (let go = 0; go < G; go++) {
    const ob = previousOffset + go * S;
    for (let j = 0; j < S; j++) tally[previous[ob + j]]++;
    for (let gn = 0; gn < G; gn++) {
      const nb = freshOffset + gn * S;
      let shared = 0;
      for (let j = 0; j < S; j++) {
        const e = fresh[nb + j];
        consumed[j] = tally[e] > 0 ? 1 : 0;
        if (consumed[j]) {
          tally[e]--;
          shared++;
        }
      }
      for (let j = 0; j < S; j++) if (consumed[j]) tally[fresh[nb + j]]++;
      overlap[gn * G + go] = shared;
    }
    for (let j = 0; j < S; j++) tally[previous[ob + j]] = 0;
  }
  if (!topology.hierarchical) {
    const cost = ws.cost;
    for (let i = 0; i < G * G; i++) cost[i] = -overlap[i];
    solveAssignment(cost, G, gpuTarget, ws.assignment);
  } else {
    // Best GPU matching inside every (fresh node, previous node) pair, then the best node
    // matching on those values: permuting nodes as blocks keeps each group on one node.
    const { cost, nodeCost, nodeGpuMatch, nodeTarget, match } = ws;
    for (let nn = 0; nn < N; nn++) {
      for (let no = 0; no < N; no++) {
        for (let i = 0; i < gpn; i++) {
          for (let k = 0; k < gpn; k++) {
            cost[i * gpn + k] = -overlap[(nn * gpn + i) * G + no * gpn + k];
          }
        }
        nodeCost[nn * N + no] = solveAssignment(cost, gpn, match, ws.assignment);
        const base = (nn * N + no) * gpn;
        for (let i = 0; i < gpn; i++) nodeGpuMatch[base + i] = match[i];
      }
    }
    solveAssignment(nodeCost, N, nodeTarget, ws.assignment);
    for (let nn = 0; nn < N; nn++) {
      const no = nodeTarget[nn];
      const base = (nn * N + no) * gpn;
      for (let i = 0; i < gpn; i++) gpuTarget[nn * gpn + i] = no * gpn + nodeGpuMatch[base + i];
    }
  }
  // Within each GPU: experts the previous GPU already holds stay in their slots, the rest fill
  // the remaining slots in the fresh plan's order.
  const taken = ws.taken;
  let changed = 0;
  for (let gn = 0; gn < G; gn++) {
    const go = gpuTarget[gn];
    const nb = freshOffset + gn * S;
    const ob = previousOffset + go * S;
    const outBase = outOffset + go * S;
    for (let j = 0; j < S; j++) tally[fresh[nb + j]]++;
    taken.fill(0);
    for (let j = 0; j < S; j++) {
      const e = previous[ob + j];
      if (tally[e] > 0) {
        tally[e]--;
        out[outBase + j] = e;
        taken[j] = 1;
      }
    }
    let slot = 0;
    for (let j = 0; j < S; j++) {
      const e = fresh[nb + j];
      if (tally[e] === 0) continue;
      tally[e]--;
      while (taken[slot]) slot++;
      out[outBase + slot] = e;
      taken[slot] = 1;
      changed++;
    }
  }
  return changed;
}
