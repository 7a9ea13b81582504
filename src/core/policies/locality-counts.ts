import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import type { CoActivationGraph } from "../routing/coactivation.js";
import { maskWords } from "../routing/dispatch.js";
import { setsMeet } from "./locality-search.js";

/** Count moves checked by the exact dispatch rule per layer, at most (bounds the work). */
export const COUNT_MOVES_PER_LAYER = 4;

/** Count moves whose loads are tried per layer, at most. */
export const FITS_PER_LAYER = 16;

/** Slot pairs the load repairs may examine per layer, at most (bounds a large model's time). */
export const COUNT_WORK_PER_LAYER = 60_000;

/** Relative fall of the check's remote nodes a count move must bring (sampling noise). */
const MIN_GAIN = 0;

/** Recipients considered per node for each slot (the strongest gains on that node). */
const RECIPIENTS = 4;

/** Swap rounds inside a node that may bring an overloaded GPU back under the cap. */
const REPAIR_ROUNDS = 4;

/** Remote nodes a layer of a placement sends (any consistent sum: only compared). */
export interface RemoteCheck {
  remote(p: Placement, layer: number): number;
}

/**
 * Chooses replica counts for locality in one layer of `out`, in place: moves one replica slot
 * from a donor expert with at least two replicas to a recipient expert (donor count - 1,
 * recipient count + 1), where the recipient is co-activated with the experts of that slot's
 * node without a replica there and the donor's replica there keeps little co-activation (or is
 * its second on that node). Every GPU holding the donor or the recipient changes load (a replica
 * carries load / count); GPUs pushed above `cap` are repaired by swaps inside their node (which
 * keep every expert's nodes), else the move is undone. A move is kept only when `check` says the
 * layer sends strictly fewer remote nodes, so the layer never gets worse on the check's tokens.
 * At most {@link COUNT_MOVES_PER_LAYER} moves are checked. No GPU gets a second replica of an
 * expert; every expert keeps a replica; under a relaxed hierarchy (`home`) an expert's last
 * replica on its home node stays. `logcnt` and `replicaRank` (slot order, as
 * `localizePlacement` writes them) are kept consistent.
 *
 * @param loads the loads the plan was made for
 * @param out the placement to improve (its layer `layer` is changed in place)
 * @param layer the layer
 * @param graph the layer's co-activation
 * @param cap the largest GPU load allowed
 * @param home per expert, the node that must keep one of its replicas, or null
 * @param check remote nodes of a layer under the exact dispatch rule
 * @param topology the cluster shape
 * @returns the count moves kept
 * @throws never for a valid placement of `topology`
 * @example
 * ```ts
 * // 2 nodes x 1 GPU x 3 slots; hub 0 is chosen with 1 and with 3, which are too heavy to share
 * // a node; cold expert 2 has a replica on each node. No arrangement of these counts within
 * // the cap does better than 0.75 remote nodes per token; giving 0 the slot of 2's second
 * // replica on node 1 does 0.5.
 * const t = makeTopology(5, 6, 1, 2, 2);
 * const loads = toLoadMatrix([[10, 30, 2, 30, 2]]);
 * const out = placementFromPhy2log([[1, 0, 2, 3, 4, 2]], 5);
 * const r = makeRouting({ tokens: 2, layers: 1, k: 2, experts: 5,
 *   topk: new Int32Array([0, 1, 0, 3]), rank: null });
 * const graph = coActivationGraph(layerCoActivation(r, 0));
 * const check = { remote: (p: Placement, l: number) =>
 *   dispatchStats(r, p, { numGpus: 2, numNodes: 2 }).perLayer[l] };
 * localizeCounts(loads, out, 0, graph, 41, null, check, t); // 1
 * out.phy2log; // Int32Array [1, 0, 2, 3, 4, 0]; out.logcnt: [2, 1, 1, 1, 1]
 * ```
 */
export function localizeCounts(
  loads: LoadMatrix,
  out: Placement,
  layer: number,
  graph: CoActivationGraph,
  cap: number,
  home: Int32Array | null,
  check: RemoteCheck,
  topology: Topology,
): number {
  const { numExperts: E, numReplicas: P, numNodes: N, numGpus: G } = topology;
  const { slotsPerGpu: S, slotsPerNode } = topology;
  if (N < 2) return 0;
  const phy = out.phy2log.subarray(layer * P, (layer + 1) * P);
  const cnt = out.logcnt.subarray(layer * E, (layer + 1) * E);
  const load = loads.data.subarray(layer * E, (layer + 1) * E);
  const limit = cap * (1 + 1e-12);
  const onNode = new Int32Array(E * N);
  // Node sets as nodeMasks lays them out: one word up to 32 nodes, more past that.
  const W = maskWords(N);
  const mask = new Uint32Array(E * W);
  const rest = new Uint32Array(W);
  const gain = new Float64Array(E * N);
  const top = new Int32Array(N * RECIPIENTS);
  const gpu = new Float64Array(G);
  const cand: { score: number; s: number; r: number }[] = [];
  const saved = new Int32Array(P);
  let checks = 0;
  let fitsTried = 0;
  const budget = { left: COUNT_WORK_PER_LAYER };
  const { start, neighbor, weight } = graph;
  // Computed when a first move fits (most layers of a large model have none).
  let remote = -1;
  let kept = 0;
  while (checks < COUNT_MOVES_PER_LAYER && fitsTried < FITS_PER_LAYER && budget.left > 0) {
    onNode.fill(0);
    mask.fill(0);
    for (let s = 0; s < P; s++) {
      const n = (s / slotsPerNode) | 0;
      onNode[phy[s] * N + n]++;
      mask[phy[s] * W + (n >>> 5)] |= 1 << (n & 31);
    }
    // Gain of one more replica of r on node n: co-activation with experts there that r shares
    // no node with yet.
    gain.fill(0);
    for (let r = 0; r < E; r++) {
      for (let i = start[r]; i < start[r + 1]; i++) {
        const j = neighbor[i] * W;
        if (setsMeet(mask, j, mask, r * W, W)) continue;
        for (let w = 0; w < W; w++) {
          for (let bits = mask[j + w]; bits !== 0; bits &= bits - 1) {
            gain[r * N + (w << 5) + 31 - Math.clz32(bits & -bits)] += weight[i];
          }
        }
      }
    }
    top.fill(-1);
    for (let n = 0; n < N; n++) {
      for (let r = 0; r < E; r++) {
        const g = gain[r * N + n];
        if (g <= 0) continue;
        const row = n * RECIPIENTS;
        let i = 0;
        while (i < RECIPIENTS && top[row + i] >= 0 && gain[top[row + i] * N + n] >= g) i++;
        if (i >= RECIPIENTS) continue;
        for (let j = RECIPIENTS - 1; j > i; j--)
          top[n * RECIPIENTS + j] = top[n * RECIPIENTS + j - 1];
        top[n * RECIPIENTS + i] = r;
      }
    }
    // Candidates (slot, recipient) by co-activation gained minus lost, best first.
    cand.length = 0;
    for (let s = 0; s < P; s++) {
      const d = phy[s];
      const n = (s / slotsPerNode) | 0;
      if (cnt[d] < 2) continue;
      const alone = onNode[d * N + n] === 1;
      if (alone && home !== null && home[d] === n) continue;
      let loss = 0;
      if (alone) {
        rest.set(mask.subarray(d * W, d * W + W));
        rest[n >>> 5] &= ~(1 << (n & 31));
        for (let i = start[d]; i < start[d + 1]; i++) {
          const j = neighbor[i];
          if (onNode[j * N + n] > 0 && !setsMeet(mask, j * W, rest, 0, W)) loss += weight[i];
        }
      }
      const g0 = ((s / S) | 0) * S;
      for (let i = 0; i < RECIPIENTS; i++) {
        const r = top[n * RECIPIENTS + i];
        if (r < 0) break;
        const score = gain[r * N + n] - loss;
        if (score <= 0) break;
        if (r === d || holds(phy, g0, S, r, -1)) continue;
        cand.push({ score, s, r });
      }
    }
    cand.sort((x, y) => y.score - x.score || x.s - y.s || x.r - y.r);
    let accepted = false;
    for (const c of cand) {
      if (checks >= COUNT_MOVES_PER_LAYER || fitsTried >= FITS_PER_LAYER || budget.left <= 0) break;
      fitsTried++;
      saved.set(phy);
      const d = phy[c.s];
      phy[c.s] = c.r;
      cnt[d]--;
      cnt[c.r]++;
      if (
        fits(phy, cnt, load, gpu, limit, topology, graph, home, (c.s / slotsPerNode) | 0, budget)
      ) {
        if (remote < 0) {
          const moved = phy.slice();
          phy.set(saved);
          cnt[d]++;
          cnt[c.r]--;
          remote = check.remote(out, layer);
          phy.set(moved);
          cnt[d]--;
          cnt[c.r]++;
        }
        checks++;
        const after = check.remote(out, layer);
        // A margin against the check sample's noise: a move must clearly pay.
        if (after < remote * (1 - MIN_GAIN)) {
          remote = after;
          kept++;
          accepted = true;
          break;
        }
      }
      phy.set(saved);
      cnt[d]++;
      cnt[c.r]--;
    }
    if (!accepted) break;
  }
  if (kept > 0) {
    const rank = out.replicaRank.subarray(layer * P, (layer + 1) * P);
    const next = new Int32Array(E);
    for (let s = 0; s < P; s++) rank[s] = next[phy[s]]++;
  }
  return kept;
}

/** True when GPU slots `g0 .. g0 + S - 1` hold expert `e` outside slot `except`. */
function holds(phy: Int32Array, g0: number, S: number, e: number, except: number): boolean {
  for (let s = g0; s < g0 + S; s++) if (s !== except && phy[s] === e) return true;
  return false;
}

/** Swaps the replicas of slots `x` and `y`, moving their loads; returns the load `x`'s GPU gained. */
function swapSlots(
  phy: Int32Array,
  gpu: Float64Array,
  S: number,
  x: number,
  y: number,
  share: (s: number) => number,
): number {
  const delta = share(y) - share(x);
  const e = phy[x];
  phy[x] = phy[y];
  phy[y] = e;
  gpu[(x / S) | 0] += delta;
  gpu[(y / S) | 0] -= delta;
  return delta;
}

/** Cross-node swaps evaluated per overloaded node, at most. */
const COMPENSATIONS = 48;

/** Co-activation kept on common nodes lost by moving a replica of `e` off node `from` onto `to`. */
function moveLoss(
  e: number,
  from: number,
  to: number,
  phy: Int32Array,
  graph: CoActivationGraph,
  slotsPerNode: number,
  mask: Uint32Array,
  after: Uint32Array,
): number {
  const W = after.length;
  let twice = 0;
  for (let s = from * slotsPerNode; s < (from + 1) * slotsPerNode; s++) if (phy[s] === e) twice++;
  after.set(mask.subarray(e * W, e * W + W));
  if (twice <= 1) after[from >>> 5] &= ~(1 << (from & 31));
  after[to >>> 5] |= 1 << (to & 31);
  let loss = 0;
  for (let i = graph.start[e]; i < graph.start[e + 1]; i++) {
    const j = graph.neighbor[i] * W;
    const before = setsMeet(mask, e * W, mask, j, W) ? 1 : 0;
    loss += graph.weight[i] * (before - (setsMeet(after, 0, mask, j, W) ? 1 : 0));
  }
  return loss;
}

/**
 * Whether every GPU is within `limit` after repairs, which `phy` keeps: a node above
 * `gpusPerNode * limit` first swaps a replica with another node (the swap losing the least
 * co-activation among the first few that bring both nodes within theirs), then swaps inside
 * nodes (which keep every expert's nodes) bring overloaded GPUs back under `limit`.
 */
function fits(
  phy: Int32Array,
  cnt: Int32Array,
  load: Float64Array,
  gpu: Float64Array,
  limit: number,
  topology: Topology,
  graph: CoActivationGraph,
  home: Int32Array | null,
  partner: number,
  budget: { left: number },
): boolean {
  const { numGpus: G, numNodes: N, slotsPerGpu: S, gpusPerNode, slotsPerNode } = topology;
  const share = (s: number) => load[phy[s]] / cnt[phy[s]];
  gpu.fill(0);
  for (let s = 0; s < G * S; s++) gpu[(s / S) | 0] += share(s);
  const nodeCap = limit * gpusPerNode;
  const nodeLoad = new Float64Array(N);
  for (let g = 0; g < G; g++) nodeLoad[(g / gpusPerNode) | 0] += gpu[g];
  for (let a = 0; a < N; a++) {
    if (nodeLoad[a] <= nodeCap) continue;
    const W = maskWords(N);
    const mask = new Uint32Array(cnt.length * W);
    const after = new Uint32Array(W);
    for (let s = 0; s < G * S; s++) {
      const n = (s / slotsPerNode) | 0;
      mask[phy[s] * W + (n >>> 5)] |= 1 << (n & 31);
    }
    const count = (e: number, n: number) => {
      let c = 0;
      for (let s = n * slotsPerNode; s < (n + 1) * slotsPerNode; s++) if (phy[s] === e) c++;
      return c;
    };
    let bx = -1;
    let by = -1;
    let bestLoss = Number.POSITIVE_INFINITY;
    // The node that lost the moved slot's load first, then every other node.
    for (let pass = 0; pass < 2 && bx < 0; pass++) {
      if (pass === 0 && partner === a) continue;
      const y0 = pass === 0 ? partner * slotsPerNode : 0;
      const y1 = pass === 0 ? y0 + slotsPerNode : G * S;
      let evaluated = 0;
      for (let x = a * slotsPerNode; x < (a + 1) * slotsPerNode && evaluated < COMPENSATIONS; x++) {
        const ex = phy[x];
        if (home !== null && home[ex] === a && count(ex, a) === 1) continue;
        budget.left -= y1 - y0;
        if (budget.left < 0) return false;
        for (let y = y0; y < y1 && evaluated < COMPENSATIONS; y++) {
          const b = (y / slotsPerNode) | 0;
          if (b === a) continue;
          const ey = phy[y];
          const delta = share(y) - share(x);
          if (nodeLoad[a] + delta > nodeCap || nodeLoad[b] - delta > nodeCap) continue;
          if (ex === ey || (home !== null && home[ey] === b && count(ey, b) === 1)) continue;
          const gx = (x / S) | 0;
          const gy = (y / S) | 0;
          if (holds(phy, gx * S, S, ey, x) || holds(phy, gy * S, S, ex, y)) continue;
          evaluated++;
          const loss =
            moveLoss(ex, a, b, phy, graph, slotsPerNode, mask, after) +
            moveLoss(ey, b, a, phy, graph, slotsPerNode, mask, after);
          if (loss < bestLoss) {
            bestLoss = loss;
            bx = x;
            by = y;
          }
        }
      }
    }
    if (bx < 0) return false;
    const delta = swapSlots(phy, gpu, S, bx, by, share);
    nodeLoad[a] += delta;
    nodeLoad[(by / slotsPerNode) | 0] -= delta;
  }
  for (let g = 0; g < G; g++) {
    const first = ((g / gpusPerNode) | 0) * gpusPerNode;
    for (let round = 0; round < REPAIR_ROUNDS && gpu[g] > limit; round++) {
      let bx = -1;
      let by = -1;
      let bestMax = gpu[g];
      budget.left -= gpusPerNode * S * S;
      for (let h = first; h < first + gpusPerNode; h++) {
        if (h === g) continue;
        for (let x = g * S; x < g * S + S; x++) {
          for (let y = h * S; y < h * S + S; y++) {
            const delta = share(y) - share(x);
            if (delta >= 0 || gpu[h] - delta > limit) continue;
            const m = Math.max(gpu[g] + delta, gpu[h] - delta);
            if (m >= bestMax || phy[x] === phy[y]) continue;
            if (holds(phy, g * S, S, phy[y], x) || holds(phy, h * S, S, phy[x], y)) continue;
            bestMax = m;
            bx = x;
            by = y;
          }
        }
      }
      if (bx < 0) return false;
      swapSlots(phy, gpu, S, bx, by, share);
    }
    if (gpu[g] > limit) return false;
  }
  return true;
}
