import type { Topology } from "../model/topology.js";
import type { CoActivationGraph } from "../routing/coactivation.js";
import { maskWords } from "../routing/dispatch.js";

/** Partners on the target node whose swap gain is evaluated per slot, at most. */
const PARTNERS = 16;

/** Compensating swaps whose gain is evaluated per move, at most. */
const COMPENSATIONS = 24;

/**
 * Whether two node sets of `words` words (`xs` from `xo`, `ys` from `yo`; bit `n & 31` of word
 * `n >>> 5` for node `n`, as `nodeMasks` lays them out) share a node.
 *
 * @param xs the first set's array
 * @param xo the first set's offset
 * @param ys the second set's array
 * @param yo the second set's offset
 * @param words words per set (`maskWords(numNodes)`)
 * @returns true when some node is in both
 * @example
 * ```ts
 * setsMeet(new Uint32Array([0, 1]), 0, new Uint32Array([3, 1]), 0, 2); // true (node 32)
 * ```
 */
export function setsMeet(
  xs: Uint32Array,
  xo: number,
  ys: Uint32Array,
  yo: number,
  words: number,
): boolean {
  for (let w = 0; w < words; w++) if ((xs[xo + w] & ys[yo + w]) !== 0) return true;
  return false;
}

/**
 * Judges each move the search would keep (rebalancing from a previous placement prices moves in
 * changed slots): `accept` sees the slots after the move and the swaps that made it (pairs of
 * slots in `undo[0 .. undoLength)`); false undoes the move.
 */
export interface MoveGate {
  accept(phy: Int32Array, undo: Int32Array, undoLength: number): boolean;
}

/** One layer's plan for {@link LocalitySearch.run}: its loads and its slots. */
export interface LocalityLayer {
  /** Flat loads; the layer's experts are `loads[loadOffset .. loadOffset + numExperts)`. */
  loads: Float64Array;
  loadOffset: number;
  /** The layer's slots (expert per slot, GPU-major) to start from; `numReplicas` long. */
  phy: Int32Array;
  /** The layer's replica counts; `numExperts` long (kept: the search moves replicas). */
  cnt: Int32Array;
}

/**
 * Local search of one layer's slots for locality: swaps of replicas between nodes that raise
 * the co-activation kept on common nodes (the weight of expert pairs that share a node), each
 * followed when needed by a compensating swap between the same two nodes (node loads stay
 * within `gpusPerNode * cap`) and swaps inside a node that bring every GPU back under `cap`.
 * A move that cannot be made feasible is undone, so the result never has a GPU above `cap`
 * unless the start had. No GPU gets a second replica of an expert. Deterministic.
 *
 * Arrays are allocated once per topology; `run` may be called for layer after layer.
 *
 * @example
 * ```ts
 * // 2 nodes x 1 GPU x 2 slots; tokens choose {0, 1} and {2, 3}, which start split over nodes
 * const r = makeRouting({ tokens: 2, layers: 1, k: 2, experts: 4,
 *   topk: new Int32Array([0, 1, 2, 3]), rank: null });
 * const search = new LocalitySearch(makeTopology(4, 4, 1, 2, 2));
 * const layer = { loads: new Float64Array([5, 5, 5, 5]), loadOffset: 0,
 *   phy: new Int32Array([0, 2, 1, 3]), cnt: new Int32Array([1, 1, 1, 1]) };
 * search.run(layer, coActivationGraph(layerCoActivation(r, 0)), 10, null, 1e6); // 2
 * search.phy; // Int32Array [3, 2, 1, 0]: {2, 3} on node 0, {0, 1} on node 1
 * ```
 */
export class LocalitySearch {
  readonly topology: Topology;
  /** The current slots (the result after `run`). */
  readonly phy: Int32Array;
  private readonly gpuLoad: Float64Array;
  private readonly nodeLoad: Float64Array;
  /** Load per replica of each expert. */
  private readonly share: Float64Array;
  /** Replicas of expert `e` on node `n`: `[e * numNodes + n]`. */
  private readonly onNode: Int32Array;
  /**
   * Bit `n & 31` of word `e * words + (n >>> 5)` set when expert `e` has a replica on node `n`
   * (one word up to 32 nodes: the fast path; more words past that).
   */
  private readonly mask: Uint32Array;
  private readonly words: number;
  /** Scratch node sets of the wide path, `words` each. */
  private readonly maskA: Uint32Array;
  private readonly maskB: Uint32Array;
  private readonly nodeGain: Float64Array;
  /** A node's slots sorted by load, for the compensating swap. */
  private readonly order: Int32Array;
  private readonly orderShare: Float64Array;
  private undo: Int32Array;
  private undoLength = 0;
  private graph!: CoActivationGraph;
  private home: Int32Array | null = null;
  private gate: MoveGate | null = null;
  private cap = 0;
  private nodeCap = 0;
  /** Work spent in the last `run` (neighbour visits). */
  work = 0;
  /** Moves kept in the last `run`. */
  moves = 0;

  /**
   * @param topology the cluster shape
   * @param words words per node set, at least `maskWords(numNodes)` (default); more only to
   *   check the several-word path against the one-word path on a small topology
   */
  constructor(topology: Topology, words = 0) {
    const { numReplicas: P, numGpus: G, numNodes: N, numExperts: E } = topology;
    this.topology = topology;
    this.phy = new Int32Array(P);
    this.gpuLoad = new Float64Array(G);
    this.nodeLoad = new Float64Array(N);
    this.share = new Float64Array(E);
    this.onNode = new Int32Array(E * N);
    this.words = Math.max(words, maskWords(N));
    this.mask = new Uint32Array(E * this.words);
    this.maskA = new Uint32Array(this.words);
    this.maskB = new Uint32Array(this.words);
    this.nodeGain = new Float64Array(N);
    this.order = new Int32Array(topology.slotsPerNode);
    this.orderShare = new Float64Array(topology.slotsPerNode);
    this.undo = new Int32Array(64);
  }

  /**
   * Improves `layer`'s slots in `this.phy`.
   *
   * @param layer loads and starting slots and counts
   * @param graph the layer's co-activation
   * @param cap the largest GPU load allowed
   * @param home per expert, the node that must keep one of its replicas (relaxed hierarchy),
   *   or null
   * @param budget neighbour visits to spend at most
   * @param gate when given, a move is kept only if the gate accepts it
   * @returns the co-activation weight moved onto common nodes
   */
  run(
    layer: LocalityLayer,
    graph: CoActivationGraph,
    cap: number,
    home: Int32Array | null,
    budget: number,
    gate: MoveGate | null = null,
  ): number {
    const t = this.topology;
    const { numReplicas: P, numNodes: N, numExperts: E, slotsPerGpu: S, slotsPerNode } = t;
    const { phy, gpuLoad, nodeLoad, share, onNode, mask } = this;
    this.graph = graph;
    this.home = home;
    this.gate = gate;
    this.cap = cap * (1 + 1e-12);
    this.nodeCap = this.cap * t.gpusPerNode;
    this.work = 0;
    this.moves = 0;
    phy.set(layer.phy);
    for (let e = 0; e < E; e++) share[e] = layer.loads[layer.loadOffset + e] / layer.cnt[e];
    gpuLoad.fill(0);
    nodeLoad.fill(0);
    onNode.fill(0);
    mask.fill(0);
    for (let s = 0; s < P; s++) {
      const e = phy[s];
      const n = (s / slotsPerNode) | 0;
      gpuLoad[(s / S) | 0] += share[e];
      nodeLoad[n] += share[e];
      onNode[e * N + n]++;
      mask[e * this.words + (n >>> 5)] |= 1 << (n & 31);
    }
    let total = 0;
    for (let pass = 0; pass < 8 && this.work < budget; pass++) {
      let gained = 0;
      for (let s1 = 0; s1 < P && this.work < budget; s1++) {
        gained += this.improveSlot(s1);
      }
      total += gained;
      if (gained <= 0) break;
    }
    return total;
  }

  /** Tries the best swaps of slot `s1`'s replica to the node where it gains most; returns the gain kept. */
  private improveSlot(s1: number): number {
    const { slotsPerNode } = this.topology;
    const a = this.phy[s1];
    const p = (s1 / slotsPerNode) | 0;
    if (this.pinned(a, p)) return 0;
    const q = this.words === 1 ? this.bestNode(a, p) : this.bestNodeWide(a, p);
    if (q < 0) return 0;
    // The best few partners on node q, tried in order until one is feasible.
    let b1 = -1;
    let g1 = 0;
    let b2 = -1;
    let g2 = 0;
    // A few partners per try, from a rotating start: on large nodes evaluating every slot of
    // node q would spend the budget on few moves.
    const tries = Math.min(PARTNERS, slotsPerNode);
    const offset = (s1 * 7) % slotsPerNode;
    for (let i = 0; i < tries; i++) {
      const s2 = q * slotsPerNode + ((offset + i) % slotsPerNode);
      const b = this.phy[s2];
      if (b === a || this.pinned(b, q)) continue;
      const g = this.gain(s1, s2);
      if (g > g1) {
        b2 = b1;
        g2 = g1;
        b1 = s2;
        g1 = g;
      } else if (g > g2) {
        b2 = s2;
        g2 = g;
      }
    }
    if (b1 >= 0) {
      const kept = this.tryMove(s1, b1, g1);
      if (kept > 0) return kept;
    }
    if (b2 >= 0) return this.tryMove(s1, b2, g2);
    return 0;
  }

  /** True when expert `e` must keep its replica on node `n` (its last one on its home node). */
  private pinned(e: number, n: number): boolean {
    const home = this.home;
    return home !== null && home[e] === n && this.onNode[e * this.topology.numNodes + n] === 1;
  }

  /** The node where one more replica of `a` (one fewer on `p`) keeps the most co-activation, or -1. */
  private bestNode(a: number, p: number): number {
    const N = this.topology.numNodes;
    const { start, neighbor, weight } = this.graph;
    const { mask, nodeGain } = this;
    const ma = mask[a];
    const rest = this.onNode[a * N + p] === 1 ? ma & ~(1 << p) : ma;
    let base = 0;
    nodeGain.fill(0);
    const from = start[a];
    const to = start[a + 1];
    this.work += to - from + 1;
    for (let i = from; i < to; i++) {
      const mj = mask[neighbor[i]];
      const before = (ma & mj) !== 0 ? 1 : 0;
      if ((rest & mj) !== 0) {
        base += weight[i] * (1 - before);
        continue;
      }
      base -= weight[i] * before;
      for (let bits = mj; bits !== 0; bits &= bits - 1) {
        nodeGain[31 - Math.clz32(bits & -bits)] += weight[i];
      }
    }
    return this.pickNode(a, p, base);
  }

  /**
   * The node without a replica of `a` (nor `p`) where one more replica of `a` gains most:
   * `base` plus its `nodeGain`, or -1 when none gains.
   */
  private pickNode(a: number, p: number, base: number): number {
    const N = this.topology.numNodes;
    const { nodeGain, onNode } = this;
    let best = -1;
    let bestGain = 0;
    for (let q = 0; q < N; q++) {
      if (q === p || onNode[a * N + q] > 0) continue;
      const g = base + nodeGain[q];
      if (g > bestGain) {
        bestGain = g;
        best = q;
      }
    }
    return best;
  }

  /** Co-activation kept on common nodes gained by swapping the replicas in slots `s1` and `s2`. */
  private swapGain(s1: number, s2: number): number {
    const { numNodes: N, slotsPerNode } = this.topology;
    const { phy, mask, onNode } = this;
    const p = (s1 / slotsPerNode) | 0;
    const q = (s2 / slotsPerNode) | 0;
    if (p === q) return 0;
    const a = phy[s1];
    const b = phy[s2];
    const ma = mask[a];
    const mb = mask[b];
    const ma2 = (onNode[a * N + p] === 1 ? ma & ~(1 << p) : ma) | (1 << q);
    const mb2 = (onNode[b * N + q] === 1 ? mb & ~(1 << q) : mb) | (1 << p);
    const { start, neighbor, weight } = this.graph;
    let gain = 0;
    for (let i = start[a], end = start[a + 1]; i < end; i++) {
      const j = neighbor[i];
      if (j === b) {
        gain += weight[i] * (((ma2 & mb2) !== 0 ? 1 : 0) - ((ma & mb) !== 0 ? 1 : 0));
        continue;
      }
      const mj = mask[j];
      gain += weight[i] * (((ma2 & mj) !== 0 ? 1 : 0) - ((ma & mj) !== 0 ? 1 : 0));
    }
    for (let i = start[b], end = start[b + 1]; i < end; i++) {
      const j = neighbor[i];
      if (j === a) continue;
      const mj = mask[j];
      gain += weight[i] * (((mb2 & mj) !== 0 ? 1 : 0) - ((mb & mj) !== 0 ? 1 : 0));
    }
    this.work += start[a + 1] - start[a] + start[b + 1] - start[b] + 1;
    return gain;
  }

  /** {@link swapGain} on one-word node sets, {@link swapGainWide} past 32 nodes. */
  private gain(s1: number, s2: number): number {
    return this.words === 1 ? this.swapGain(s1, s2) : this.swapGainWide(s1, s2);
  }

  /**
   * Writes into `out` expert `e`'s node set with one replica moved off node `from` (removed
   * when it is the last there) onto node `to` (none when -1).
   */
  private movedSet(e: number, from: number, to: number, out: Uint32Array): void {
    const W = this.words;
    out.set(this.mask.subarray(e * W, e * W + W));
    if (this.onNode[e * this.topology.numNodes + from] === 1)
      out[from >>> 5] &= ~(1 << (from & 31));
    if (to >= 0) out[to >>> 5] |= 1 << (to & 31);
  }

  /** {@link bestNode} on node sets of several words (more than 32 nodes). */
  private bestNodeWide(a: number, p: number): number {
    const W = this.words;
    const { start, neighbor, weight } = this.graph;
    const { mask, nodeGain } = this;
    const rest = this.maskA;
    this.movedSet(a, p, -1, rest);
    let base = 0;
    nodeGain.fill(0);
    const from = start[a];
    const to = start[a + 1];
    this.work += to - from + 1;
    for (let i = from; i < to; i++) {
      const j = neighbor[i] * W;
      const before = setsMeet(mask, a * W, mask, j, W) ? 1 : 0;
      if (setsMeet(rest, 0, mask, j, W)) {
        base += weight[i] * (1 - before);
        continue;
      }
      base -= weight[i] * before;
      for (let w = 0; w < W; w++) {
        for (let bits = mask[j + w]; bits !== 0; bits &= bits - 1) {
          nodeGain[(w << 5) + 31 - Math.clz32(bits & -bits)] += weight[i];
        }
      }
    }
    return this.pickNode(a, p, base);
  }

  /** {@link swapGain} on node sets of several words (more than 32 nodes). */
  private swapGainWide(s1: number, s2: number): number {
    const { slotsPerNode } = this.topology;
    const W = this.words;
    const { phy, mask } = this;
    const p = (s1 / slotsPerNode) | 0;
    const q = (s2 / slotsPerNode) | 0;
    if (p === q) return 0;
    const a = phy[s1];
    const b = phy[s2];
    const ma2 = this.maskA;
    const mb2 = this.maskB;
    this.movedSet(a, p, q, ma2);
    this.movedSet(b, q, p, mb2);
    const { start, neighbor, weight } = this.graph;
    let gain = 0;
    for (let i = start[a], end = start[a + 1]; i < end; i++) {
      const j = neighbor[i];
      if (j === b) {
        const after = setsMeet(ma2, 0, mb2, 0, W) ? 1 : 0;
        gain += weight[i] * (after - (setsMeet(mask, a * W, mask, b * W, W) ? 1 : 0));
        continue;
      }
      const after = setsMeet(ma2, 0, mask, j * W, W) ? 1 : 0;
      gain += weight[i] * (after - (setsMeet(mask, a * W, mask, j * W, W) ? 1 : 0));
    }
    for (let i = start[b], end = start[b + 1]; i < end; i++) {
      const j = neighbor[i];
      if (j === a) continue;
      const after = setsMeet(mb2, 0, mask, j * W, W) ? 1 : 0;
      gain += weight[i] * (after - (setsMeet(mask, b * W, mask, j * W, W) ? 1 : 0));
    }
    this.work += start[a + 1] - start[a] + start[b + 1] - start[b] + 1;
    return gain;
  }

  /** True when GPU `g` holds expert `e` in a slot other than `except`. */
  private gpuHolds(g: number, e: number, except: number): boolean {
    const S = this.topology.slotsPerGpu;
    for (let s = g * S, end = s + S; s < end; s++)
      if (s !== except && this.phy[s] === e) return true;
    return false;
  }

  /** Whether swapping slots `s1` and `s2` would put an expert twice on a GPU (or is a no-op). */
  private swapDuplicates(s1: number, s2: number): boolean {
    const S = this.topology.slotsPerGpu;
    const g1 = (s1 / S) | 0;
    const g2 = (s2 / S) | 0;
    const a = this.phy[s1];
    const b = this.phy[s2];
    if (g1 === g2 || a === b) return true;
    return this.gpuHolds(g1, b, s1) || this.gpuHolds(g2, a, s2);
  }

  /** Swaps the replicas of slots `s1` and `s2`, updating loads and node sets, and logs it. */
  private swap(s1: number, s2: number): void {
    const { numNodes: N, slotsPerGpu: S, slotsPerNode } = this.topology;
    const { phy, share, gpuLoad, nodeLoad, onNode, mask } = this;
    const a = phy[s1];
    const b = phy[s2];
    phy[s1] = b;
    phy[s2] = a;
    const d = share[b] - share[a];
    gpuLoad[(s1 / S) | 0] += d;
    gpuLoad[(s2 / S) | 0] -= d;
    const p = (s1 / slotsPerNode) | 0;
    const q = (s2 / slotsPerNode) | 0;
    if (p !== q) {
      nodeLoad[p] += d;
      nodeLoad[q] -= d;
      const W = this.words;
      const pw = p >>> 5;
      const pb = 1 << (p & 31);
      const qw = q >>> 5;
      const qb = 1 << (q & 31);
      if (--onNode[a * N + p] === 0) mask[a * W + pw] &= ~pb;
      if (onNode[a * N + q]++ === 0) mask[a * W + qw] |= qb;
      if (--onNode[b * N + q] === 0) mask[b * W + qw] &= ~qb;
      if (onNode[b * N + p]++ === 0) mask[b * W + pw] |= pb;
    }
    if (this.undoLength + 2 > this.undo.length) {
      const grown = new Int32Array(this.undo.length * 2);
      grown.set(this.undo);
      this.undo = grown;
    }
    this.undo[this.undoLength++] = s1;
    this.undo[this.undoLength++] = s2;
  }

  /** Undoes the logged swaps back to `mark`. */
  private revert(mark: number): void {
    while (this.undoLength > mark) {
      const s2 = this.undo[--this.undoLength];
      const s1 = this.undo[--this.undoLength];
      this.swap(s1, s2);
      this.undoLength -= 2;
    }
  }

  /**
   * Makes the swap of `s1` and `s2` (worth `gain`), compensates the node loads and repairs the
   * GPUs; keeps it and returns the net gain when all of that succeeds, else undoes it and
   * returns 0.
   */
  private tryMove(s1: number, s2: number, gain: number): number {
    if (this.swapDuplicates(s1, s2)) return 0;
    const { slotsPerNode, slotsPerGpu: S } = this.topology;
    const p = (s1 / slotsPerNode) | 0;
    const q = (s2 / slotsPerNode) | 0;
    this.undoLength = 0;
    this.swap(s1, s2);
    let net = gain;
    let s3 = -1;
    let s4 = -1;
    if (this.nodeLoad[p] > this.nodeCap || this.nodeLoad[q] > this.nodeCap) {
      // A second swap between the same nodes that brings both back within their cap, at the
      // least co-activation lost among the first few that do. Node q's slots sorted by load
      // give each slot of node p its window of partners by binary search (scanning all pairs
      // of two nodes' slots cost slotsPerNode^2 per move).
      let best = Number.NEGATIVE_INFINITY;
      const { share, phy, nodeLoad, nodeCap, order, orderShare } = this;
      let m = 0;
      for (let y = q * slotsPerNode, ye = y + slotsPerNode; y < ye; y++) {
        if (y === s2) continue;
        const v = share[phy[y]];
        let i = m++;
        while (i > 0 && orderShare[i - 1] > v) {
          order[i] = order[i - 1];
          orderShare[i] = orderShare[i - 1];
          i--;
        }
        order[i] = y;
        orderShare[i] = v;
      }
      this.work += 2 * slotsPerNode;
      const lo = nodeLoad[q] - nodeCap;
      const hi = nodeCap - nodeLoad[p];
      let evaluated = 0;
      for (
        let x = p * slotsPerNode, xe = x + slotsPerNode;
        x < xe && evaluated < COMPENSATIONS && lo <= hi;
        x++
      ) {
        if (x === s1 || this.pinned(phy[x], p)) continue;
        const from = share[phy[x]] + lo;
        const to = share[phy[x]] + hi;
        let a = 0;
        let b = m;
        while (a < b) {
          const mid = (a + b) >>> 1;
          if (orderShare[mid] < from) a = mid + 1;
          else b = mid;
        }
        this.work += 8;
        for (let i = a; i < m && orderShare[i] <= to && evaluated < COMPENSATIONS; i++) {
          const y = order[i];
          if (this.pinned(phy[y], q) || this.swapDuplicates(x, y)) continue;
          const g = this.gain(x, y);
          evaluated++;
          if (g > best) {
            best = g;
            s3 = x;
            s4 = y;
          }
        }
      }
      if (s3 < 0 || gain + best <= 0) {
        this.revert(0);
        return 0;
      }
      this.swap(s3, s4);
      net += best;
    }
    const touched = [
      (s1 / S) | 0,
      (s2 / S) | 0,
      s3 < 0 ? -1 : (s3 / S) | 0,
      s4 < 0 ? -1 : (s4 / S) | 0,
    ];
    for (const g of touched) {
      if (g >= 0 && !this.repairGpu(g)) {
        this.revert(0);
        return 0;
      }
    }
    if (this.gate !== null && !this.gate.accept(this.phy, this.undo, this.undoLength)) {
      this.revert(0);
      return 0;
    }
    this.moves++;
    return net;
  }

  /**
   * Brings GPU `g` under the cap by swaps with the other GPUs of its node (which keep node sets,
   * so locality, unchanged); false when it cannot.
   */
  private repairGpu(g: number): boolean {
    const { slotsPerGpu: S, gpusPerNode } = this.topology;
    const { gpuLoad, share, phy, cap } = this;
    const first = ((g / gpusPerNode) | 0) * gpusPerNode;
    for (let round = 0; round < 4 && gpuLoad[g] > cap; round++) {
      let bestX = -1;
      let bestY = -1;
      let bestMax = gpuLoad[g];
      for (let h = first; h < first + gpusPerNode; h++) {
        if (h === g) continue;
        for (let x = g * S; x < g * S + S; x++) {
          for (let y = h * S; y < h * S + S; y++) {
            const d = share[phy[y]] - share[phy[x]];
            if (d >= 0) continue;
            if (gpuLoad[h] - d > cap) continue;
            const m = Math.max(gpuLoad[g] + d, gpuLoad[h] - d);
            if (m < bestMax && !this.swapDuplicates(x, y)) {
              bestMax = m;
              bestX = x;
              bestY = y;
            }
          }
        }
      }
      this.work += gpusPerNode * S * S;
      if (bestX < 0) return false;
      this.swap(bestX, bestY);
    }
    return gpuLoad[g] <= cap;
  }
}
