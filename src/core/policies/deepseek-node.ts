import { OrderWorkspace, orderBitsDescending } from "../blocks/order.js";
import { resetPackTree, settlePack } from "../blocks/packing.js";

// Float32 bit patterns with the sign dropped: for the non-negative loads (and -0) they compare
// as the values do. A full pack gets 0x7fffffff, above +Infinity's bits.
const SIGNLESS = 0x7fffffff;
const FULL = 0x7fffffff;

/**
 * Buffers of {@link planDeepseekNode} for one node's shape, allocated once. Float32 loads sit
 * next to an int32 view of the same memory: a store rounds like the reference's float32, the
 * view gives the sort key without a conversion per item.
 */
export class DeepseekNodeWorkspace {
  readonly weight: Float32Array;
  readonly weightRaw: Int32Array;
  readonly bits: Int32Array;
  readonly count: Int32Array;
  readonly expertOrder: Int32Array;
  readonly heapExpert: Int32Array;
  readonly heapBits: Int32Array;
  readonly pickExpert: Int32Array;
  readonly pickRank: Int32Array;
  /** A bit per expert: split (given a further replica) by the current node's plan. */
  readonly split: Int32Array;
  readonly splitWeight: Float32Array;
  readonly splitRaw: Int32Array;
  readonly splitBits: Int32Array;
  readonly splitExpert: Int32Array;
  readonly splitRank: Int32Array;
  readonly splitSlot: Int32Array;
  readonly splitOrder: Int32Array;
  readonly packKey: Int32Array;
  readonly blockKey = new Int32Array(8);
  readonly blockPack = new Int32Array(8);
  readonly treeBits: Int32Array;
  readonly treePack: Int32Array;
  readonly packWeight: Float32Array;
  readonly packBits: Int32Array;
  readonly packCount: Int32Array;
  readonly scratch = new Float32Array(1);
  readonly scratchRaw = new Int32Array(this.scratch.buffer);
  readonly order = new OrderWorkspace();
  /** Where the unsplit experts start in `expertOrder` once the replicas are chosen. */
  unsplitStart = 0;

  /**
   * @param numExperts - experts of the node
   * @param numReplicas - slots of the node (at least `numExperts`)
   * @param numPacks - GPUs of the node (dividing `numReplicas`)
   */
  constructor(
    readonly numExperts: number,
    readonly numReplicas: number,
    readonly numPacks: number,
  ) {
    const En = numExperts;
    const extra = numReplicas - numExperts;
    const top = Math.min(extra, En);
    this.weight = new Float32Array(En);
    this.weightRaw = new Int32Array(this.weight.buffer);
    this.bits = new Int32Array(En);
    this.count = new Int32Array(En);
    this.expertOrder = new Int32Array(En);
    this.heapExpert = new Int32Array(top);
    this.heapBits = new Int32Array(top);
    this.pickExpert = new Int32Array(extra);
    this.pickRank = new Int32Array(extra);
    this.split = new Int32Array(Math.ceil(En / 32));
    this.splitWeight = new Float32Array(top + extra);
    this.splitRaw = new Int32Array(this.splitWeight.buffer);
    this.splitBits = new Int32Array(top + extra);
    this.splitExpert = new Int32Array(top + extra);
    this.splitRank = new Int32Array(top + extra);
    this.splitSlot = new Int32Array(top + extra);
    this.splitOrder = new Int32Array(top + extra);
    this.packKey = new Int32Array(numPacks <= 8 ? 8 : Math.max(numPacks, 64));
    let leaves = 1;
    while (leaves < numPacks) leaves *= 2;
    this.treeBits = new Int32Array(2 * leaves);
    this.treePack = new Int32Array(2 * leaves);
    this.packWeight = new Float32Array(numPacks);
    this.packBits = new Int32Array(this.packWeight.buffer);
    this.packCount = new Int32Array(numPacks);
  }
}

/**
 * Steps 2 and 3 of the reference's hierarchical rebalance for one node (DeepSeek EPLB `eplb.py`,
 * d52c72d): greedy replication of the node's experts into its slots, then greedy packing of the
 * replicas onto its GPUs (more than one slot per GPU), written straight into the layer's
 * GPU-major slots. The result is bit-identical to `greedyReplication` then `greedyPacking` on the
 * per-replica loads (the tests compare both with a plain transcription of the reference); it
 * gets there with one sort of the experts instead of a tree over all experts and a sort of all
 * replicas:
 *
 * - Only the `extra = slots - experts` experts ranked first by (float32 load descending, index
 *   ascending) can take a further replica: before an expert takes its first, every expert ranked
 *   above it must have taken one (an untouched one weighs at least as much and wins the tie), so
 *   the expert ranked `k`-th (from 0) cannot take one before pick `k + 1`. The picks are made by
 *   a heap over those experts, ordered like the reference's argmax (load per replica descending,
 *   lowest index on ties).
 * - The packing order is (load per replica descending, replica index ascending): the experts that
 *   kept one replica are already in that order in the experts' sort; the replicas of the split
 *   experts (few) are sorted apart and merged in.
 *
 * @param loads - the flat loads; the node's experts are `loads[loadOffset + experts[expertBase + i]]`
 * @param loadOffset - where the layer's loads start
 * @param experts - the layer's experts in node-major order (`mlog2log`), layer-local indices
 * @param expertBase - where the node's experts start in `experts`
 * @param phy2log - flat slots; the node's are `[slotBase .. slotBase + numReplicas)`
 * @param replicaRank - flat replica ranks, same slots
 * @param slotBase - the node's first slot
 * @param logcnt - flat replica counts; expert `x` of the layer is at `expertOffset + x`
 * @param expertOffset - where the layer's counts start
 * @param ws - the node's buffers (its shape: experts, slots, GPUs)
 * @example
 * ```ts
 * const ws = new DeepseekNodeWorkspace(4, 6, 2);
 * const phy = new Int32Array(6), rank = new Int32Array(6), cnt = new Int32Array(4);
 * const experts = new Int32Array([0, 1, 2, 3]);
 * planDeepseekNode(new Float64Array([10, 40, 20, 30]), 0, experts, 0, phy, rank, 0, cnt, 0, ws);
 * phy; // Int32Array [1, 1, 0, 2, 3, 3]
 * ```
 */
export function planDeepseekNode(
  loads: Float64Array,
  loadOffset: number,
  experts: Int32Array,
  expertBase: number,
  phy2log: Int32Array,
  replicaRank: Int32Array,
  slotBase: number,
  logcnt: Int32Array,
  expertOffset: number,
  ws: DeepseekNodeWorkspace,
): void {
  const En = ws.numExperts;
  const { weight, weightRaw, bits, count, expertOrder } = ws;
  for (let i = 0; i < En; i++) {
    weight[i] = loads[loadOffset + experts[expertBase + i]];
    bits[i] = weightRaw[i] & SIGNLESS;
    count[i] = 1;
  }
  orderBitsDescending(bits, En, expertOrder, ws.order);
  const split = replicate(ws);
  // Stable by position, which is ascending replica index: ties keep the reference's order.
  orderBitsDescending(ws.splitBits, split, ws.splitOrder, ws.order);
  pack(experts, expertBase, phy2log, replicaRank, slotBase, ws, split);
  for (let i = 0; i < En; i++) logcnt[expertOffset + experts[expertBase + i]] = count[i];
}

/**
 * The greedy replication over the top experts (see {@link planDeepseekNode}); fills `count`,
 * the picks and the split replicas in ascending replica index, and returns how many of those.
 */
function replicate(ws: DeepseekNodeWorkspace): number {
  const En = ws.numExperts;
  const extra = ws.numReplicas - En;
  const top = Math.min(extra, En);
  const { weight, bits, count, expertOrder, heapExpert, heapBits, pickExpert, pickRank, split } =
    ws;
  // A prefix of the sorted experts is a heap under the same order.
  for (let j = 0; j < top; j++) {
    const e = expertOrder[j];
    heapExpert[j] = e;
    heapBits[j] = bits[e];
  }
  const { scratch, scratchRaw } = ws;
  for (let r = 0; r < extra; r++) {
    const e = heapExpert[0];
    const c = count[e];
    pickExpert[r] = e;
    pickRank[r] = c;
    if (c === 1) split[e >> 5] |= 1 << (e & 31);
    count[e] = c + 1;
    // A float32 store rounds the quotient once: the reference's float32 division.
    scratch[0] = weight[e] / (c + 1);
    const b = scratchRaw[0] & SIGNLESS;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= top) break;
      let cb = heapBits[child];
      const right = child + 1;
      if (right < top) {
        const rb = heapBits[right];
        if (rb > cb || (rb === cb && heapExpert[right] < heapExpert[child])) {
          child = right;
          cb = rb;
        }
      }
      if (cb < b || (cb === b && heapExpert[child] > e)) break;
      heapBits[i] = cb;
      heapExpert[i] = heapExpert[child];
      i = child;
    }
    heapBits[i] = b;
    heapExpert[i] = e;
  }
  // The unsplit experts in sorted order from `unsplitStart` on: the split ones are all among
  // the first `top`, so the others there move right, in order.
  let to = top;
  for (let j = top - 1; j >= 0; j--) {
    const e = expertOrder[j];
    if (count[e] === 1) expertOrder[--to] = e;
  }
  ws.unsplitStart = to;
  const { splitWeight, splitRaw, splitBits, splitExpert, splitRank, splitSlot } = ws;
  // The split experts' replicas in ascending replica index: each one's first (its own index),
  // in ascending expert order off the bit set (which is left empty), then the picks in order
  // (indices En, En + 1, ...).
  let s = 0;
  for (let word = 0; word < split.length; word++) {
    let set = split[word];
    split[word] = 0;
    while (set !== 0) {
      const low = set & -set;
      const e = 32 * word + 31 - Math.clz32(low);
      set ^= low;
      splitWeight[s] = weight[e] / count[e];
      splitBits[s] = splitRaw[s] & SIGNLESS;
      splitExpert[s] = e;
      splitRank[s] = 0;
      splitSlot[s] = e;
      s++;
    }
  }
  for (let r = 0; r < extra; r++) {
    const e = pickExpert[r];
    splitWeight[s] = weight[e] / count[e];
    splitBits[s] = splitRaw[s] & SIGNLESS;
    splitExpert[s] = e;
    splitRank[s] = pickRank[r];
    splitSlot[s] = En + r;
    s++;
  }
  return s;
}

/**
 * The reference's balanced packing of the node's replicas onto its GPUs, each replica written
 * straight to its slot. The replicas come in packing order (load descending, replica index
 * ascending) by merging the unsplit experts, in their sorted order, with the split experts'
 * replicas, sorted apart. Each goes to the lightest GPU with room (float32 weight bits, ties to
 * the lower GPU), found branch-free, since a pack's rank after an item is unpredictable: by a
 * knockout over eight packs, over eight blocks of eight (up to 64 GPUs, each block's lightest
 * kept), or a tournament tree over more.
 */
function pack(
  experts: Int32Array,
  expertBase: number,
  phy2log: Int32Array,
  replicaRank: Int32Array,
  slotBase: number,
  ws: DeepseekNodeWorkspace,
  split: number,
): void {
  const n = ws.numReplicas;
  const En = ws.numExperts;
  const numPacks = ws.numPacks;
  const perPack = n / numPacks;
  const { weight, bits, expertOrder } = ws;
  const { splitWeight, splitBits, splitExpert, splitRank, splitSlot, splitOrder } = ws;
  const { packKey, blockKey, blockPack, treeBits, treePack, packWeight, packBits, packCount } = ws;
  const eight = numPacks <= 8;
  const blocks = !eight && numPacks <= 64;
  // Padding packs weigh FULL, above any pack with room, so they are never the lightest.
  for (let p = numPacks; p < packKey.length; p++) packKey[p] = FULL;
  for (let p = 0; p < numPacks; p++) {
    packKey[p] = 0;
    packWeight[p] = 0;
    packCount[p] = 0;
  }
  if (blocks) {
    for (let k = 0; k < 8; k++) {
      const q = 8 * k + lightestOfEight(packKey, 8 * k);
      blockKey[k] = packKey[q];
      blockPack[k] = q;
    }
  }
  const leaves = eight || blocks ? 0 : resetPackTree(treeBits, treePack, numPacks);
  let a = ws.unsplitStart;
  let b = 0;
  // The next split replica: its key, replica index and entry (key -1 once none is left).
  let sKey = -1;
  let sSlot = 0;
  let s = 0;
  if (split > 0) {
    s = splitOrder[0];
    sKey = splitBits[s];
    sSlot = splitSlot[s];
  }
  for (let t = 0; t < n; t++) {
    const e = a < En ? expertOrder[a] : 0;
    const eKey = a < En ? bits[e] : -1;
    let expert: number;
    let rank: number;
    let w: number;
    if (eKey > sKey || (eKey === sKey && e < sSlot)) {
      expert = e;
      rank = 0;
      w = weight[e];
      a++;
    } else {
      expert = splitExpert[s];
      rank = splitRank[s];
      w = splitWeight[s];
      if (++b < split) {
        s = splitOrder[b];
        sKey = splitBits[s];
        sSlot = splitSlot[s];
      } else sKey = -1;
    }
    let p: number;
    if (eight) p = lightestOfEight(packKey, 0);
    else if (blocks) p = blockPack[lightestOfEight(blockKey, 0)];
    else p = treePack[1];
    const c = packCount[p];
    const slot = slotBase + p * perPack + c;
    phy2log[slot] = experts[expertBase + expert];
    replicaRank[slot] = rank;
    packCount[p] = c + 1;
    // A float32 store rounds the sum: the reference's float32 addition. Adding 0 turns a -0
    // load into +0, whose bits sort as the zero it equals.
    packWeight[p] = packWeight[p] + (w + 0);
    const key = c + 1 === perPack ? FULL : packBits[p] & FULL;
    if (eight) packKey[p] = key;
    else if (blocks) {
      packKey[p] = key;
      const k = p >> 3;
      const q = 8 * k + lightestOfEight(packKey, 8 * k);
      blockKey[k] = packKey[q];
      blockPack[k] = q;
    } else settlePack(treeBits, treePack, leaves, p, key);
  }
}

/**
 * The offset (0-7) of the smallest of `keys[at .. at + 8)`, the first on ties: a knockout whose
 * three rounds run side by side where a scan is a chain of seven selects.
 */
function lightestOfEight(keys: Int32Array, at: number): number {
  const k0 = keys[at];
  const k1 = keys[at + 1];
  const k2 = keys[at + 2];
  const k3 = keys[at + 3];
  const k4 = keys[at + 4];
  const k5 = keys[at + 5];
  const k6 = keys[at + 6];
  const k7 = keys[at + 7];
  // All ones when the right one is smaller (keys are non-negative int32s, so no overflow).
  const r01 = (k1 - k0) >> 31;
  const r23 = (k3 - k2) >> 31;
  const r45 = (k5 - k4) >> 31;
  const r67 = (k7 - k6) >> 31;
  const m01 = k0 ^ ((k0 ^ k1) & r01);
  const m23 = k2 ^ ((k2 ^ k3) & r23);
  const m45 = k4 ^ ((k4 ^ k5) & r45);
  const m67 = k6 ^ ((k6 ^ k7) & r67);
  const i01 = r01 & 1;
  const i23 = 2 | (r23 & 1);
  const i45 = 4 | (r45 & 1);
  const i67 = 6 | (r67 & 1);
  const r03 = (m23 - m01) >> 31;
  const r47 = (m67 - m45) >> 31;
  const m03 = m01 ^ ((m01 ^ m23) & r03);
  const m47 = m45 ^ ((m45 ^ m67) & r47);
  const i03 = i01 ^ ((i01 ^ i23) & r03);
  const i47 = i45 ^ ((i45 ^ i67) & r47);
  return i03 ^ ((i03 ^ i47) & ((m47 - m03) >> 31));
}
