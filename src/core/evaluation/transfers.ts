import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";

/** How a changed slot gets its expert's weights, cheapest first. */
export const TRANSFER_KINDS = ["local", "intraNode", "interNode"] as const;

/**
 * `local`: copied from another slot of the same GPU; `intraNode`: from a GPU of the same node;
 * `interNode`: from another node.
 */
export type TransferKind = (typeof TRANSFER_KINDS)[number];

/** Transfer counts by kind. */
export interface TransferCounts {
  local: number;
  intraNode: number;
  interNode: number;
}

/**
 * Every weight transfer a migration needs, flat: transfer `i` copies `expert[i]` from slot
 * `source[i]` of the previous placement to slot `destination[i]` (both in layer `layer[i]`), of
 * kind `TRANSFER_KINDS[kind[i]]`. Sources refer to the previous placement: an engine reads all of
 * a layer's sources before it overwrites any destination (as vLLM's and SGLang's staged
 * transfers do). Transfers of layer `l` are `layerOffsets[l] .. layerOffsets[l + 1] - 1`.
 */
export interface TransferPlan extends TransferCounts {
  readonly count: number;
  readonly layerOffsets: Int32Array;
  readonly layer: Int32Array;
  readonly expert: Int32Array;
  readonly source: Int32Array;
  readonly destination: Int32Array;
  readonly kind: Uint8Array;
}

/** One transfer as a plain object (for JSON and readers). */
export interface Transfer {
  layer: number;
  expert: number;
  /** Slot of the previous placement that holds the expert's weights. */
  source: number;
  /** Slot that receives them. */
  destination: number;
  sourceGpu: number;
  destinationGpu: number;
  kind: TransferKind;
}

/** Reusable buffers for {@link planLayerTransfers}, sized for one topology. */
export class TransferWorkspace {
  /** Previous slots of each expert: `slots[start[e] .. start[e + 1])`. */
  readonly start: Int32Array;
  readonly slots: Int32Array;
  /** Transfers already served by each previous slot, to spread the reads. */
  readonly served: Int32Array;
  /**
   * Transfers already read from each GPU by other GPUs, kept across layers (a new plan resets
   * it): a rebalance takes as long as its busiest GPU's copies, so reads go to the least busy
   * GPU holding the expert.
   */
  readonly gpuServed: Int32Array;

  constructor(topology: Topology) {
    this.start = new Int32Array(topology.numExperts + 1);
    this.slots = new Int32Array(topology.numReplicas);
    this.served = new Int32Array(topology.numReplicas);
    this.gpuServed = new Int32Array(topology.numGpus);
  }
}

/**
 * Plans the transfers of one layer: for every slot whose expert changes, the source is a slot of
 * the previous placement that holds the new expert, preferring the same GPU (a local copy), then
 * the same node, then another node; among equals, a source whose slot keeps its expert (its
 * weights stay valid after the move), then (for copies between GPUs) the GPU that other GPUs
 * read least from so far in this plan (`ws.gpuServed`, kept across layers), then the slot serving
 * the fewest transfers so far, then the lowest slot. Writes transfers at `outIndex` of the `out`
 * arrays (which need room for `numReplicas` more) and returns the index after the last one
 * written.
 *
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 2, 2); // 2 nodes, 1 GPU each, 2 slots per GPU
 * const out = { expert: new Int32Array(4), source: new Int32Array(4),
 *   destination: new Int32Array(4), kind: new Uint8Array(4) };
 * planLayerTransfers(new Int32Array([0, 1, 2, 0]), 0, new Int32Array([0, 0, 2, 1]), 0, t, out, 0,
 *   new TransferWorkspace(t)); // 2
 * // slot 1 <- slot 0 (expert 0, local); slot 3 <- slot 1 (expert 1, interNode)
 * ```
 */
export function planLayerTransfers(
  previous: Int32Array,
  previousOffset: number,
  next: Int32Array,
  nextOffset: number,
  topology: Topology,
  out: { expert: Int32Array; source: Int32Array; destination: Int32Array; kind: Uint8Array },
  outIndex: number,
  ws: TransferWorkspace,
): number {
  const { numReplicas: P, numExperts: E, slotsPerGpu: S, slotsPerNode: Sn } = topology;
  const { start, slots, served, gpuServed } = ws;
  start.fill(0);
  // An empty previous slot (-1) holds nothing to copy from.
  for (let s = 0; s < P; s++) {
    const e = previous[previousOffset + s];
    if (e >= 0) start[e + 1]++;
  }
  for (let e = 0; e < E; e++) start[e + 1] += start[e];
  for (let s = 0; s < P; s++) {
    const e = previous[previousOffset + s];
    if (e >= 0) slots[start[e]++] = s;
  }
  for (let e = E; e > 0; e--) start[e] = start[e - 1];
  start[0] = 0;
  served.fill(0);
  let index = outIndex;
  for (let d = 0; d < P; d++) {
    const e = next[nextOffset + d];
    if (e === previous[previousOffset + d]) continue;
    const dGpu = Math.floor(d / S);
    const dNode = Math.floor(d / Sn);
    let best = -1;
    let bestClass = Number.POSITIVE_INFINITY;
    let bestKey = Number.POSITIVE_INFINITY;
    for (let i = start[e]; i < start[e + 1]; i++) {
      const s = slots[i];
      const sGpu = Math.floor(s / S);
      const kind = sGpu === dGpu ? 0 : Math.floor(s / Sn) === dNode ? 1 : 2;
      const moves = next[nextOffset + s] === e ? 0 : 1;
      // Lexicographic (kind, source overwritten, GPU reads, slot reads); slots in order.
      const cls = kind * 2 + moves;
      const key = (kind === 0 ? 0 : gpuServed[sGpu]) * (P + 1) + served[s];
      if (cls < bestClass || (cls === bestClass && key < bestKey)) {
        bestClass = cls;
        bestKey = key;
        best = s;
      }
    }
    const kind = bestClass >> 1;
    served[best]++;
    if (kind > 0) gpuServed[Math.floor(best / S)]++;
    out.expert[index] = e;
    out.source[index] = best;
    out.destination[index] = d;
    out.kind[index] = kind;
    index++;
  }
  return index;
}

/**
 * The transfer plan from `previous` to `next` (same shape) for every layer: what an engine must
 * copy to switch placements, with counts by kind.
 *
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 2, 2);
 * const plan = planTransfers(placementFromPhy2log([[0, 1, 2, 0]], 3),
 *   placementFromPhy2log([[0, 0, 2, 1]], 3), t);
 * // plan.count = 2, plan.local = 1, plan.intraNode = 0, plan.interNode = 1
 * ```
 */
export function planTransfers(
  previous: Placement,
  next: Placement,
  topology: Topology,
): TransferPlan {
  const { layers } = next;
  const P = topology.numReplicas;
  const capacity = layers * P;
  const out = {
    expert: new Int32Array(capacity),
    source: new Int32Array(capacity),
    destination: new Int32Array(capacity),
    kind: new Uint8Array(capacity),
  };
  const layerOf = new Int32Array(capacity);
  const layerOffsets = new Int32Array(layers + 1);
  const ws = new TransferWorkspace(topology);
  let index = 0;
  for (let l = 0; l < layers; l++) {
    const end = planLayerTransfers(
      previous.phy2log,
      l * P,
      next.phy2log,
      l * P,
      topology,
      out,
      index,
      ws,
    );
    layerOf.fill(l, index, end);
    index = end;
    layerOffsets[l + 1] = index;
  }
  const counts = [0, 0, 0];
  for (let i = 0; i < index; i++) counts[out.kind[i]]++;
  return {
    count: index,
    layerOffsets,
    layer: layerOf.slice(0, index),
    expert: out.expert.slice(0, index),
    source: out.source.slice(0, index),
    destination: out.destination.slice(0, index),
    kind: out.kind.slice(0, index),
    local: counts[0],
    intraNode: counts[1],
    interNode: counts[2],
  };
}

/** Transfers per GPU and kind, summed over layers: what each GPU receives and what it sends. */
export interface GpuTransferCounts {
  /** `incoming[kind * numGpus + g]`: transfers whose destination slot is on GPU `g`. */
  readonly incoming: Int32Array;
  /** `outgoing[kind * numGpus + g]`: transfers whose source slot is on GPU `g`. */
  readonly outgoing: Int32Array;
  /** Per GPU: copies it receives from other GPUs (same node or another), the ones that take time. */
  readonly remoteIn: Int32Array;
  /** Per GPU: copies other GPUs read from it. */
  readonly remoteOut: Int32Array;
  readonly numGpus: number;
}

/**
 * Counts a transfer plan's transfers per GPU and kind ({@link TRANSFER_KINDS} order), as
 * destination and as source. A rebalance takes as long as its busiest GPU's copies, so the
 * largest incoming (or outgoing) count, not the total, bounds how long it takes.
 *
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 2, 2); // 2 nodes, 1 GPU each, 2 slots per GPU
 * const plan = planTransfers(placementFromPhy2log([[0, 1, 2, 0]], 3),
 *   placementFromPhy2log([[0, 0, 2, 1]], 3), t);
 * const c = gpuTransferCounts(plan, t);
 * c.incoming; // Int32Array [1, 0, 0, 0, 0, 1]: GPU 0 gets a local copy, GPU 1 one from node 0
 * c.remoteIn; // Int32Array [0, 1]
 * ```
 */
export function gpuTransferCounts(plan: TransferPlan, topology: Topology): GpuTransferCounts {
  const { numGpus: G, slotsPerGpu: S } = topology;
  const incoming = new Int32Array(TRANSFER_KINDS.length * G);
  const outgoing = new Int32Array(TRANSFER_KINDS.length * G);
  const remoteIn = new Int32Array(G);
  const remoteOut = new Int32Array(G);
  for (let i = 0; i < plan.count; i++) {
    const k = plan.kind[i] * G;
    const to = Math.floor(plan.destination[i] / S);
    const from = Math.floor(plan.source[i] / S);
    incoming[k + to]++;
    outgoing[k + from]++;
    if (plan.kind[i] > 0) {
      remoteIn[to]++;
      remoteOut[from]++;
    }
  }
  return { incoming, outgoing, remoteIn, remoteOut, numGpus: G };
}

/**
 * The transfers as plain objects, in layer then destination order (for JSON output).
 *
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 2, 2);
 * const plan = planTransfers(placementFromPhy2log([[0, 1, 2, 0]], 3),
 *   placementFromPhy2log([[0, 0, 2, 1]], 3), t);
 * transferList(plan, t)[0];
 * // { layer: 0, expert: 0, source: 0, destination: 1, sourceGpu: 0, destinationGpu: 0, kind: "local" }
 * ```
 */
export function transferList(plan: TransferPlan, topology: Topology): Transfer[] {
  const S = topology.slotsPerGpu;
  const list: Transfer[] = new Array(plan.count);
  for (let i = 0; i < plan.count; i++) {
    list[i] = {
      layer: plan.layer[i],
      expert: plan.expert[i],
      source: plan.source[i],
      destination: plan.destination[i],
      sourceGpu: Math.floor(plan.source[i] / S),
      destinationGpu: Math.floor(plan.destination[i] / S),
      kind: TRANSFER_KINDS[plan.kind[i]],
    };
  }
  return list;
}
