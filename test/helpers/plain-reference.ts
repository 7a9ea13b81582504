// Plain, obviously-correct transcriptions of DeepSeek's reference loops (eplb.py, d52c72d):
// linear scans and comparator sorts, float32 arithmetic. The fast paths in src/core must agree
// with them exactly (tests), and the bench measures its speed-up against them (same process).

/** Indices by float32 weight descending, ties by ascending index. */
export function plainOrder(w: ArrayLike<number>): number[] {
  const f = Array.from(w, (x) => Math.fround(x));
  return f.map((_, i) => i).sort((a, b) => f[b] - f[a] || a - b);
}

/** The reference's balanced_packing with a linear scan over packs. */
export function plainPacking(
  w: ArrayLike<number>,
  numPacks: number,
): { pack: number[]; rank: number[] } {
  const n = w.length;
  const perPack = n / numPacks;
  if (perPack === 1) return { pack: Array.from(w, (_, i) => i), rank: Array.from(w, () => 0) };
  const pack = new Array<number>(n).fill(-1);
  const rank = new Array<number>(n).fill(-1);
  const weights = new Array<number>(numPacks).fill(0);
  const items = new Array<number>(numPacks).fill(0);
  for (const i of plainOrder(w)) {
    let best = -1;
    for (let p = 0; p < numPacks; p++) {
      if (items[p] < perPack && (best < 0 || weights[p] < weights[best])) best = p;
    }
    pack[i] = best;
    rank[i] = items[best];
    weights[best] = Math.fround(weights[best] + Math.fround(w[i]));
    items[best]++;
  }
  return { pack, rank };
}

/** The reference's replicate_experts with a full argmax per extra replica. */
export function plainReplication(
  w: ArrayLike<number>,
  numReplicas: number,
): { phy: number[]; rank: number[]; count: number[] } {
  const E = w.length;
  const phy = Array.from({ length: E }, (_, i) => i);
  const rank = new Array<number>(E).fill(0);
  const count = new Array<number>(E).fill(1);
  for (let r = E; r < numReplicas; r++) {
    let best = 0;
    for (let e = 1; e < E; e++) {
      if (
        Math.fround(Math.fround(w[e]) / count[e]) > Math.fround(Math.fround(w[best]) / count[best])
      ) {
        best = e;
      }
    }
    phy.push(best);
    rank.push(count[best]);
    count[best]++;
  }
  return { phy, rank, count };
}

/**
 * One layer of the reference's hierarchical policy; returns phy2log of the layer and, into
 * `ranks` when given, each slot's replica rank (the reference's `phyrank`, which orders log2phy).
 */
export function plainHierarchicalLayer(
  weight: ArrayLike<number>,
  numReplicas: number,
  numGroups: number,
  numNodes: number,
  numGpus: number,
  ranks?: number[],
): number[] {
  const E = weight.length;
  const gs = E / numGroups;
  const gpn = numGroups / numNodes;
  const En = E / numNodes;
  const Pn = numReplicas / numNodes;
  const S = numReplicas / numGpus;
  const groupLoad = Array.from({ length: numGroups }, (_, g) => {
    let s = 0;
    for (let j = 0; j < gs; j++) s = Math.fround(s + Math.fround(weight[g * gs + j]));
    return s;
  });
  const groups = plainPacking(groupLoad, numNodes);
  const mlog2log = new Array<number>(E);
  for (let g = 0; g < numGroups; g++) {
    for (let j = 0; j < gs; j++)
      mlog2log[(groups.pack[g] * gpn + groups.rank[g]) * gs + j] = g * gs + j;
  }
  const out = new Array<number>(numReplicas);
  for (let n = 0; n < numNodes; n++) {
    const local = Array.from({ length: En }, (_, i) => Math.fround(weight[mlog2log[n * En + i]]));
    const rep = plainReplication(local, Pn);
    const loads = rep.phy.map((i) => Math.fround(local[i] / rep.count[i]));
    const gpus = plainPacking(loads, numGpus / numNodes);
    for (let p = 0; p < Pn; p++) {
      out[n * Pn + gpus.pack[p] * S + gpus.rank[p]] = mlog2log[n * En + rep.phy[p]];
      if (ranks) ranks[n * Pn + gpus.pack[p] * S + gpus.rank[p]] = rep.rank[p];
    }
  }
  return out;
}

/**
 * The reference's rebalance_experts (phy2log; each slot's replica rank into `ranks` when given),
 * global when groups do not divide by nodes.
 */
export function plainRebalance(
  weight: ArrayLike<number>[],
  numReplicas: number,
  numGroups: number,
  numNodes: number,
  numGpus: number,
  ranks?: number[][],
): number[][] {
  const hierarchical = numGroups % numNodes === 0;
  return weight.map((row, l) => {
    const rank: number[] | undefined = ranks ? [] : undefined;
    if (ranks && rank) ranks[l] = rank;
    return hierarchical
      ? plainHierarchicalLayer(row, numReplicas, numGroups, numNodes, numGpus, rank)
      : plainHierarchicalLayer(row, numReplicas, 1, 1, numGpus, rank);
  });
}
