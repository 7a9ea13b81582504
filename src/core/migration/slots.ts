import { EplbInputError, requireInteger } from "../model/errors.js";

/**
 * Reorders the slots of every GPU of one layer of `next` (in place) so that an expert that stays
 * on a GPU keeps one of its previous slots there: every expert's replicas on the GPU are unchanged,
 * only their order within the GPU. Of an expert's `k` previous slots on a GPU, the first
 * `min(k, replicas it keeps there)` (in slot order) keep it, which is the most unchanged slots any
 * order reaches. A slot a kept expert does not claim keeps its new expert where it can; the rest
 * fill the free slots in order. `-1` (an empty slot) never counts as kept.
 *
 * Why: an expert that moves to another slot of the same GPU costs a local copy and a new address
 * for nothing; vLLM's `preserve_intragpu_slots` (vllm/distributed/eplb/policy) does the same step.
 *
 * @param previous the previous layer row (`previousOffset .. + numReplicas`)
 * @param next the new layer row, reordered in place
 * @param slotsPerGpu slots of one GPU (GPU `g` holds slots `g * slotsPerGpu ..`)
 * @returns the slots whose expert differs from `previous` afterwards
 * @example
 * ```ts
 * const next = new Int32Array([1, 5, 0, 4, 6, 2, 7, 3]);
 * keepGpuSlots([0, 1, 2, 3, 4, 5, 6, 7], 0, next, 0, 8, 4);
 * // next = [0, 1, 5, 4, 3, 2, 6, 7]: experts 0, 1, 6 and 7 keep their slots; returns 4
 * ```
 */
export function keepGpuSlots(
  previous: ArrayLike<number>,
  previousOffset: number,
  next: Int32Array,
  nextOffset: number,
  numReplicas: number,
  slotsPerGpu: number,
): number {
  const S = slotsPerGpu;
  const used = new Uint8Array(S);
  const post = new Int32Array(S);
  const claimed = new Uint8Array(S);
  let changed = 0;
  for (let start = 0; start < numReplicas; start += S) {
    used.fill(0);
    claimed.fill(0);
    const o = previousOffset + start;
    const n = nextOffset + start;
    // Previous slots in order: each claims a still unplaced replica of its expert on this GPU.
    for (let j = 0; j < S; j++) {
      const e = previous[o + j];
      if (e < 0) continue;
      let k = next[n + j] === e && !used[j] ? j : -1;
      for (let i = 0; k < 0 && i < S; i++) if (!used[i] && next[n + i] === e) k = i;
      if (k < 0) continue;
      used[k] = 1;
      claimed[j] = 1;
      post[j] = e;
    }
    // Unclaimed replicas stay where the new plan put them when that slot is free...
    for (let i = 0; i < S; i++) {
      if (used[i] || claimed[i]) continue;
      used[i] = 1;
      claimed[i] = 1;
      post[i] = next[n + i];
    }
    // ...and the rest fill the free slots in order.
    let free = 0;
    for (let i = 0; i < S; i++) {
      if (used[i]) continue;
      while (claimed[free]) free++;
      claimed[free] = 1;
      post[free] = next[n + i];
    }
    for (let j = 0; j < S; j++) {
      next[n + j] = post[j];
      if (post[j] !== previous[o + j]) changed++;
    }
  }
  return changed;
}

/**
 * {@link keepGpuSlots} on nested rows, for every layer: the counterpart of vLLM's
 * `preserve_intragpu_slots(new_phy2log, num_ranks, old_phy2log)`. Returns new rows; the inputs are
 * not changed. `-1` (an empty slot) is allowed in both.
 *
 * @param next the new placement, `[layers][numReplicas]`
 * @param numGpus GPUs; must divide `numReplicas`
 * @param previous the previous placement, same shape
 * @throws EplbInputError when the shapes differ or `numGpus` does not divide the slots
 * @example
 * ```ts
 * preserveGpuSlots([[1, 5, 0, 4, 6, 2, 7, 3]], 2, [[0, 1, 2, 3, 4, 5, 6, 7]]);
 * // [[0, 1, 5, 4, 3, 2, 6, 7]]
 * ```
 */
export function preserveGpuSlots(
  next: ReadonlyArray<ArrayLike<number>>,
  numGpus: number,
  previous: ReadonlyArray<ArrayLike<number>>,
): number[][] {
  requireInteger("numGpus", numGpus, 1);
  if (previous.length !== next.length) {
    throw new EplbInputError(
      "previous",
      `${previous.length} layers`,
      `must have ${next.length} layers like next`,
    );
  }
  return next.map((row, l) => {
    const P = row.length;
    if (P % numGpus !== 0) {
      throw new EplbInputError("numGpus", numGpus, `must divide the slots per layer (${P})`);
    }
    if (previous[l].length !== P) {
      throw new EplbInputError(
        `previous[${l}].length`,
        previous[l].length,
        `must equal ${P} like next[${l}]`,
      );
    }
    const out = Int32Array.from(row);
    keepGpuSlots(previous[l], 0, out, 0, P, P / numGpus);
    return Array.from(out);
  });
}
