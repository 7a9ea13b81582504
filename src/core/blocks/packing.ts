import { OrderWorkspace, orderDescending } from "./order.js";

/** Reusable buffers for {@link greedyPacking}; grows to the largest problem seen. */
export class PackingWorkspace {
  order = new Int32Array(0);
  queueBits = new Int32Array(0);
  queuePack = new Int32Array(0);
  treeBits = new Int32Array(0);
  treePack = new Int32Array(0);
  packWeight = new Float32Array(0);
  packBits = new Uint32Array(0);
  packCount = new Int32Array(0);
  readonly orderWorkspace = new OrderWorkspace();

  ensure(numItems: number, numPacks: number): void {
    if (this.order.length < numItems) this.order = new Int32Array(numItems);
    if (this.queuePack.length < numItems + numPacks) {
      this.queueBits = new Int32Array(numItems + numPacks);
      this.queuePack = new Int32Array(numItems + numPacks);
    }
    if (this.packCount.length < numPacks) {
      this.packWeight = new Float32Array(numPacks);
      // The same memory read as bits: a float32 store rounds, the alias yields the sort key.
      this.packBits = new Uint32Array(this.packWeight.buffer);
      this.packCount = new Int32Array(numPacks);
      this.treeBits = new Int32Array(4 * numPacks);
      this.treePack = new Int32Array(4 * numPacks);
    }
  }
}

/**
 * Balanced packing of `n` weighted items into `numPacks` packs of exactly `n / numPacks` items:
 * the reference's `balanced_packing` (DeepSeek EPLB `eplb.py`, commit d52c72d).
 *
 * Items are taken heaviest first (ties: lowest index first) and each goes to the lightest pack
 * that still has room (ties: lowest pack index). Pack weights accumulate in float32 like the
 * reference. Sorted packs (few packs) or a tournament tree (many) replace the reference's linear scan over
 * packs; it picks the same pack because the key order is the same.
 *
 * With one item per pack the reference skips sorting and puts item `i` in pack `i`; so does this.
 *
 * Writes `pack[i]` (pack of item `i`) and `rank[i]` (its position within that pack).
 *
 * @example
 * ```ts
 * const pack = new Int32Array(4), rank = new Int32Array(4);
 * greedyPacking(new Float64Array([4, 3, 2, 1]), 4, 2, pack, rank);
 * // pack = [0, 1, 1, 0], rank = [0, 0, 1, 1]: packs {4, 1} and {3, 2}
 * ```
 */
export function greedyPacking(
  weights: ArrayLike<number>,
  n: number,
  numPacks: number,
  pack: Int32Array,
  rank: Int32Array,
  workspace: PackingWorkspace = new PackingWorkspace(),
): void {
  const perPack = n / numPacks;
  if (perPack === 1) {
    for (let i = 0; i < n; i++) {
      pack[i] = i;
      rank[i] = 0;
    }
    return;
  }
  workspace.ensure(n, numPacks);
  orderDescending(weights, n, workspace.order, workspace.orderWorkspace);
  if (numPacks < TREE_MIN_PACKS) packSortedQueue(weights, n, numPacks, pack, rank, workspace);
  else packTournament(weights, n, numPacks, pack, rank, workspace);
}

// From this many packs a tournament tree beats keeping the packs sorted (measured: 64 packs of
// 7 items 11.5 vs 15.3 us; 8 packs of 9 items 1.2 vs 0.6 us, where insertions move 2.4 packs).
const TREE_MIN_PACKS = 32;
const FULL = 0x7fffffff;

/**
 * The packs kept sorted ascending by (float32 weight bits, pack index) in `queueBits` /
 * `queuePack[head..tail)` (the bit pattern is monotone for non-negative floats, so this is the
 * reference's (weight, index) order): the lightest is at `head`; after taking an item it is
 * reinserted from the tail, where a pack that just took the heaviest remaining item usually
 * belongs. Two int32 arrays rather than one float64 key `bits * stride + pack`: integer compares
 * and no division to recover the pack (about 4% of a deepseek plan on dsv3-prefill).
 */
function packSortedQueue(
  weights: ArrayLike<number>,
  n: number,
  numPacks: number,
  pack: Int32Array,
  rank: Int32Array,
  ws: PackingWorkspace,
): void {
  const perPack = n / numPacks;
  const { order, queueBits, queuePack, packWeight, packBits, packCount } = ws;
  for (let p = 0; p < numPacks; p++) {
    queueBits[p] = 0;
    queuePack[p] = p;
    packWeight[p] = 0;
    packCount[p] = 0;
  }
  let head = 0;
  let tail = numPacks;
  for (let t = 0; t < n; t++) {
    const item = order[t];
    const p = queuePack[head++];
    const c = packCount[p];
    pack[item] = p;
    rank[item] = c;
    packCount[p] = c + 1;
    // A float32 store rounds the float64 sum once: the reference's float32 addition. Adding 0
    // turns a -0 load into +0, whose bits sort as the zero it equals.
    packWeight[p] = packWeight[p] + (Math.fround(weights[item]) + 0);
    if (c + 1 === perPack) continue;
    const bits = packBits[p] & FULL;
    let j = tail++;
    while (j > head) {
      const qb = queueBits[j - 1];
      if (qb < bits || (qb === bits && queuePack[j - 1] < p)) break;
      queueBits[j] = qb;
      queuePack[j] = queuePack[j - 1];
      j--;
    }
    queueBits[j] = bits;
    queuePack[j] = p;
  }
}

/**
 * A tournament tree over the packs: leaf `leaves + p` holds pack p's float32 weight bits (a full
 * pack 0x7fffffff, above +Infinity's), each inner node its lighter child's bits and pack, ties to
 * the left child, whose packs have the lower indices. Updating the leaf of the pack that took an
 * item rewrites its path with integer masks, no data-dependent branch.
 */
function packTournament(
  weights: ArrayLike<number>,
  n: number,
  numPacks: number,
  pack: Int32Array,
  rank: Int32Array,
  ws: PackingWorkspace,
): void {
  const perPack = n / numPacks;
  const { order, treeBits, treePack, packWeight, packBits, packCount } = ws;
  const leaves = resetPackTree(treeBits, treePack, numPacks);
  packWeight.fill(0, 0, numPacks);
  packCount.fill(0, 0, numPacks);
  for (let t = 0; t < n; t++) {
    const item = order[t];
    const p = treePack[1];
    const c = packCount[p] + 1;
    pack[item] = p;
    rank[item] = c - 1;
    packCount[p] = c;
    packWeight[p] = packWeight[p] + (Math.fround(weights[item]) + 0);
    settlePack(treeBits, treePack, leaves, p, c === perPack ? FULL : packBits[p] & FULL);
  }
}

/**
 * Fills a tournament tree over `numPacks` empty packs: leaf `leaves + p` holds pack p's float32
 * weight bits (a full pack 0x7fffffff, above +Infinity's; padding leaves too), each inner node its
 * lighter child's bits and pack, ties to the left child, whose packs have the lower indices.
 * Returns `leaves`, the power of two at or above `numPacks`; the lightest pack is `treePack[1]`.
 *
 * @param treeBits - at least `2 * leaves` entries
 * @param treePack - at least `2 * leaves` entries
 * @param numPacks - the number of packs
 * @returns the number of leaves
 * @example
 * ```ts
 * const bits = new Int32Array(8), packs = new Int32Array(8);
 * const leaves = resetPackTree(bits, packs, 3); // 4
 * packs[1]; // 0
 * ```
 */
export function resetPackTree(
  treeBits: Int32Array,
  treePack: Int32Array,
  numPacks: number,
): number {
  let leaves = 1;
  while (leaves < numPacks) leaves *= 2;
  for (let p = 0; p < leaves; p++) {
    treeBits[leaves + p] = p < numPacks ? 0 : FULL;
    treePack[leaves + p] = p;
  }
  for (let i = leaves - 1; i >= 1; i--) {
    const l = 2 * i;
    const lb = treeBits[l];
    const rb = treeBits[l + 1];
    const right = (rb - lb) >> 31;
    treeBits[i] = lb ^ ((lb ^ rb) & right);
    treePack[i] = treePack[l] ^ ((treePack[l] ^ treePack[l + 1]) & right);
  }
  return leaves;
}

/**
 * Gives pack `p` of a tree from {@link resetPackTree} the key `bits` and rewrites its path to the
 * root with integer masks, no data-dependent branch.
 *
 * @param treeBits - the tree's keys
 * @param treePack - the tree's packs
 * @param leaves - the tree's number of leaves
 * @param p - the pack
 * @param bits - its new key: float32 weight bits, or 0x7fffffff once full
 * @example
 * ```ts
 * const bits = new Int32Array(8), packs = new Int32Array(8);
 * const leaves = resetPackTree(bits, packs, 3);
 * settlePack(bits, packs, leaves, 0, 5);
 * packs[1]; // 1 (pack 0 took an item: pack 1 is now the lightest)
 * ```
 */
export function settlePack(
  treeBits: Int32Array,
  treePack: Int32Array,
  leaves: number,
  p: number,
  bits: number,
): void {
  let key = bits;
  let winner = p;
  let i = leaves + p;
  treeBits[i] = key;
  while (i > 1) {
    const s = i ^ 1;
    const sb = treeBits[s];
    // All ones when the sibling wins: lighter, or as light and on the left (i odd).
    const lose = (sb - key - (i & 1)) >> 31;
    key ^= (key ^ sb) & lose;
    winner ^= (winner ^ treePack[s]) & lose;
    i >>= 1;
    treeBits[i] = key;
    treePack[i] = winner;
  }
}
