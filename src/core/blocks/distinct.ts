import { layerMaxGpuLoad } from "../evaluation/layer-load.js";
import { EplbInputError } from "../model/errors.js";
import type { LoadMatrix } from "../model/matrix.js";
import { createPlacement, type Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import { type LayerView, planLayers } from "./layers.js";
import { refineScope } from "./refine.js";
import { recomputeScopeLoads, ScopeWorkspace, scopeLowerBound } from "./scope.js";

/** Where a GPU holds one expert twice. */
export interface GpuDuplicate {
  layer: number;
  gpu: number;
  expert: number;
}

/**
 * The first (layer, GPU) that holds an expert in two of its slots, in layer then GPU order, or
 * `null` when every GPU's experts are distinct. Slots are GPU-major (`P / numGpus` per GPU).
 *
 * @param placement the placement to scan
 * @param numGpus GPUs the slots are spread over; must divide the slots
 * @returns the first duplicate, or null
 * @throws EplbInputError when numGpus does not divide the slots
 * @example
 * ```ts
 * firstGpuDuplicate(placementFromPhy2log([[0, 1, 2, 2]], 3), 2); // { layer: 0, gpu: 1, expert: 2 }
 * ```
 */
export function firstGpuDuplicate(placement: Placement, numGpus: number): GpuDuplicate | null {
  const { layers, numReplicas: P, numExperts: E } = placement;
  if (!Number.isInteger(numGpus) || numGpus < 1 || P % numGpus !== 0) {
    throw new EplbInputError("numGpus", numGpus, `must divide the slots per layer (${P})`);
  }
  const S = P / numGpus;
  const stamp = new Int32Array(E).fill(-1);
  for (let l = 0; l < layers; l++) {
    for (let g = 0; g < numGpus; g++) {
      const mark = l * numGpus + g;
      for (let j = 0; j < S; j++) {
        const e = placement.phy2log[l * P + g * S + j];
        if (stamp[e] === mark) return { layer: l, gpu: g, expert: e };
        stamp[e] = mark;
      }
    }
  }
  return null;
}

/**
 * A copy of `placement` in which no GPU holds an expert twice, for engines that cannot serve two
 * replicas of one expert on one device (vllm-ascend keeps one local slot per expert and device,
 * and derives every rank's slot offset from the distinct experts of rank 0). Each duplicate is
 * removed by the exchange that raises the pair's max GPU load least: its slot swaps with a slot
 * of another GPU that lacks the expert (replica counts unchanged); only when no such swap exists
 * does the slot take another expert instead (counts change), chosen for the lowest max GPU load
 * of the layer. Exchanges stay within a node when the topology is hierarchical, so every group
 * keeps its replicas on its node. A repaired layer is then refined by the balanced policy's swap
 * search, which never puts an expert twice on a GPU, to win back what the repair cost. Layers
 * without duplicates are copied unchanged; the result can have a higher max GPU load than the
 * input on the layers it changes.
 *
 * @param loads the loads the placement was planned for (`[layers, experts]`)
 * @param placement a valid placement of `topology`
 * @param topology the cluster shape (GPU-major slots, nodes for hierarchical scopes)
 * @returns a new placement without duplicates on any GPU
 * @throws EplbInputError when a GPU has more slots than its scope has experts, so that a
 *   duplicate cannot be avoided
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 1, 2);
 * const p = placementFromPhy2log([[0, 0, 1, 2]], 3);
 * separateDuplicates({ layers: 1, experts: 3, data: new Float64Array([8, 1, 1]) }, p, t).phy2log;
 * // Int32Array [0, 1, 0, 2]: GPU 0 gave one replica of expert 0 to GPU 1 for expert 1
 * ```
 */
export function separateDuplicates(
  loads: LoadMatrix,
  placement: Placement,
  topology: Topology,
): Placement {
  const { numExperts: E, numReplicas: P, numGpus: G, slotsPerGpu: S } = topology;
  const out = createPlacement(placement.layers, P, E);
  out.phy2log.set(placement.phy2log);
  out.logcnt.set(placement.logcnt);
  const scopes = topology.hierarchical ? topology.numNodes : 1;
  const gpusPer = G / scopes;
  const layer = new LayerRepair(G, S, E);
  const refine = new RefineState(E);
  for (let l = 0; l < placement.layers; l++) {
    const phy = out.phy2log.subarray(l * P, (l + 1) * P);
    const cnt = out.logcnt.subarray(l * E, (l + 1) * E);
    const w = loads.data.subarray(l * E, (l + 1) * E);
    if (layer.repair(phy, cnt, w, gpusPer, l)) {
      for (let n = 0; n < scopes; n++) refine.run(phy, cnt, w, n * gpusPer, gpusPer, S);
    }
    const rank = new Int32Array(E);
    for (let s = 0; s < P; s++) out.replicaRank[l * P + s] = rank[phy[s]]++;
  }
  return out;
}

/** Buffers of {@link dropFreeLayerDuplicates} for one topology, reused across layers. */
export class DuplicateDropWorkspace {
  readonly topology: Topology;
  /** @internal */ readonly repair: LayerRepair;
  /** @internal */ readonly refine: RefineState;
  /** @internal */ readonly savedSlots: Int32Array;
  /** @internal */ readonly savedCounts: Int32Array;
  /** @internal */ readonly seen: Int32Array;

  constructor(topology: Topology) {
    const { numExperts: E, numReplicas: P, numGpus: G, slotsPerGpu: S } = topology;
    this.topology = topology;
    this.repair = new LayerRepair(G, S, E);
    this.refine = new RefineState(E);
    this.savedSlots = new Int32Array(P);
    this.savedCounts = new Int32Array(E);
    this.seen = new Int32Array(E);
  }
}

/**
 * Removes a layer's duplicate replicas on a GPU in place where that costs nothing: the layer
 * takes {@link separateDuplicates}'s repair (exchanges, then swap refinement) only when its max
 * GPU load does not rise, so a policy's guarantees on the max (the `balanced` policy's "never
 * worse than deepseek") still hold. A duplicate whose removal would raise the max stays, as do
 * all of them where a GPU has more slots than its scope has experts. Replica ranks are rewritten
 * when the layer changes.
 *
 * @param layer - the layer's loads, slots, ranks and counts (see {@link LayerView})
 * @param ws - buffers for the layer's topology
 * @returns true when the layer changed
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 1, 2);
 * const p = placementFromPhy2log([[0, 0, 1, 2]], 3);
 * const loads = { layers: 1, experts: 3, data: new Float64Array([8, 1, 1]) };
 * dropFreeLayerDuplicates(layerView(loads, p, 0), new DuplicateDropWorkspace(t)); // true
 * p.phy2log; // Int32Array [0, 1, 0, 2]: max GPU load 5 either way, no expert twice on a GPU
 * ```
 */
export function dropFreeLayerDuplicates(layer: LayerView, ws: DuplicateDropWorkspace): boolean {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, numGpus: G, slotsPerGpu: S } = t;
  const { slotOffset, expertOffset, loadOffset } = layer;
  const phy = layer.phy2log.subarray(slotOffset, slotOffset + P);
  const cnt = layer.logcnt.subarray(expertOffset, expertOffset + E);
  if (!hasGpuDuplicate(phy, G, S, ws.seen)) return false;
  const w = layer.loads.subarray(loadOffset, loadOffset + E);
  const before = layerMaxGpuLoad(layer, t);
  ws.savedSlots.set(phy);
  ws.savedCounts.set(cnt);
  const scopes = t.hierarchical ? t.numNodes : 1;
  const gpusPer = G / scopes;
  try {
    ws.repair.repair(phy, cnt, w, gpusPer, expertOffset / E);
    for (let n = 0; n < scopes; n++) ws.refine.run(phy, cnt, w, n * gpusPer, gpusPer, S);
  } catch (error) {
    // A GPU with more slots than its scope has experts: some duplicate is unavoidable.
    if (!(error instanceof EplbInputError)) throw error;
    phy.set(ws.savedSlots);
    cnt.set(ws.savedCounts);
    return false;
  }
  if (layerMaxGpuLoad(layer, t) > before) {
    phy.set(ws.savedSlots);
    cnt.set(ws.savedCounts);
    return false;
  }
  const rank = ws.seen.fill(0);
  for (let s = 0; s < P; s++) layer.replicaRank[slotOffset + s] = rank[phy[s]]++;
  return true;
}

/**
 * `placement` with every layer put through {@link dropFreeLayerDuplicates}: `placement` itself
 * when no layer changes, else a copy.
 *
 * @param loads - the loads the placement was planned for (`[layers, experts]`)
 * @param placement - a valid placement of `topology`
 * @param topology - the cluster shape
 * @returns `placement`, or a copy with the free repairs applied
 * @example
 * ```ts
 * const t = makeTopology(3, 4, 1, 1, 2);
 * const p = placementFromPhy2log([[0, 0, 1, 2]], 3);
 * dropFreeDuplicates({ layers: 1, experts: 3, data: new Float64Array([8, 1, 1]) }, p, t).phy2log;
 * // Int32Array [0, 1, 0, 2]
 * ```
 */
export function dropFreeDuplicates(
  loads: LoadMatrix,
  placement: Placement,
  topology: Topology,
): Placement {
  const copy = createPlacement(placement.layers, placement.numReplicas, placement.numExperts);
  copy.phy2log.set(placement.phy2log);
  copy.replicaRank.set(placement.replicaRank);
  copy.logcnt.set(placement.logcnt);
  const ws = new DuplicateDropWorkspace(topology);
  let changed = false;
  planLayers(
    loads,
    topology,
    (view) => {
      if (dropFreeLayerDuplicates(view, ws)) changed = true;
    },
    copy,
  );
  return changed ? copy : placement;
}

/** True when some GPU holds an expert twice among the layer's slots `phy`. */
function hasGpuDuplicate(phy: Int32Array, G: number, S: number, stamp: Int32Array): boolean {
  stamp.fill(-1);
  for (let g = 0; g < G; g++) {
    for (let j = 0; j < S; j++) {
      const e = phy[g * S + j];
      if (e < 0) continue;
      if (stamp[e] === g) return true;
      stamp[e] = g;
    }
  }
  return false;
}

/** One layer's slots, counts and loads while its duplicates are removed (buffers reused). */
class LayerRepair {
  /** Replicas of expert e on GPU g, at `g * E + e`. */
  private readonly hold: Int32Array;
  private readonly gpuLoad: Float64Array;
  private readonly inScope: Uint8Array;
  private phy: Int32Array = new Int32Array(0);
  private cnt: Int32Array = new Int32Array(0);
  private w: Float64Array = new Float64Array(0);

  constructor(
    private readonly G: number,
    private readonly S: number,
    private readonly E: number,
  ) {
    this.hold = new Int32Array(G * E);
    this.gpuLoad = new Float64Array(G);
    this.inScope = new Uint8Array(E);
  }

  /** Removes every duplicate of the layer in place; true when there was one. */
  repair(phy: Int32Array, cnt: Int32Array, w: Float64Array, gpusPer: number, layer: number) {
    const { G, S, E, hold } = this;
    this.phy = phy;
    this.cnt = cnt;
    this.w = w;
    hold.fill(0);
    for (let s = 0; s < G * S; s++) hold[((s / S) | 0) * E + phy[s]]++;
    let repaired = false;
    for (let a = 0; a < G; a++) {
      for (let j = 0; j < S; j++) {
        if (hold[a * E + phy[a * S + j]] < 2) continue;
        repaired = true;
        this.computeGpuLoads();
        const first = Math.floor(a / gpusPer) * gpusPer;
        if (!this.swapAway(a * S + j, first, gpusPer)) {
          this.replaceSlot(a * S + j, first, gpusPer, layer);
        }
      }
    }
    return repaired;
  }

  private computeGpuLoads(): void {
    const { phy, cnt, w, S, gpuLoad } = this;
    gpuLoad.fill(0);
    for (let s = 0; s < phy.length; s++) gpuLoad[(s / S) | 0] += w[phy[s]] / cnt[phy[s]];
  }

  private move(g: number, from: number, to: number): void {
    this.hold[g * this.E + from]--;
    this.hold[g * this.E + to]++;
  }

  /** Swaps `slot` (a duplicate on its GPU) with the best slot of a GPU lacking its expert. */
  private swapAway(slot: number, firstGpu: number, gpus: number): boolean {
    const { phy, cnt, w, hold, gpuLoad, S, E } = this;
    const a = (slot / S) | 0;
    const e = phy[slot];
    const we = w[e] / cnt[e];
    let best = -1;
    let bestScore = Number.POSITIVE_INFINITY;
    for (let b = firstGpu; b < firstGpu + gpus; b++) {
      if (b === a || hold[b * E + e] > 0) continue;
      for (let j = 0; j < S; j++) {
        const f = phy[b * S + j];
        if (hold[a * E + f] > 0) continue;
        const wf = w[f] / cnt[f];
        const score = Math.max(gpuLoad[a] - we + wf, gpuLoad[b] - wf + we);
        if (score < bestScore) {
          bestScore = score;
          best = b * S + j;
        }
      }
    }
    if (best < 0) return false;
    const f = phy[best];
    phy[slot] = f;
    phy[best] = e;
    this.move(a, e, f);
    this.move((best / S) | 0, f, e);
    return true;
  }

  /** Gives `slot` (a duplicate) to the expert of its scope, absent from its GPU, that keeps the
   * layer's max GPU load lowest. */
  private replaceSlot(slot: number, firstGpu: number, gpus: number, layer: number): void {
    const { phy, cnt, hold, gpuLoad, S, E, inScope } = this;
    const a = (slot / S) | 0;
    const e = phy[slot];
    // Experts of the scope: those with a slot on its GPUs.
    inScope.fill(0);
    for (let s = firstGpu * S; s < (firstGpu + gpus) * S; s++) inScope[phy[s]] = 1;
    let best = -1;
    let bestMax = Number.POSITIVE_INFINITY;
    for (let f = 0; f < E; f++) {
      if (!inScope[f] || hold[a * E + f] > 0) continue;
      phy[slot] = f;
      cnt[e]--;
      cnt[f]++;
      this.computeGpuLoads();
      let max = 0;
      for (let g = 0; g < gpuLoad.length; g++) max = Math.max(max, gpuLoad[g]);
      if (max < bestMax) {
        bestMax = max;
        best = f;
      }
      cnt[f]--;
      cnt[e]++;
      phy[slot] = e;
    }
    if (best < 0) {
      throw new EplbInputError(
        "slotsPerGpu",
        S,
        `leaves GPU ${a} of layer ${layer} no way to avoid holding expert ${e} twice: a GPU needs at least as many experts in its scope as it has slots`,
      );
    }
    phy[slot] = best;
    cnt[e]--;
    cnt[best]++;
    this.move(a, e, best);
  }
}

/**
 * Swap refinement of one scope (a node, or all GPUs) of a duplicate-free layer, through the
 * balanced policy's {@link refineScope}: the scope's experts become local experts carrying their
 * global per-replica load, and as each has at most one replica per GPU its cap is one, so no
 * exchange brings a duplicate back.
 */
class RefineState {
  private readonly ws = new ScopeWorkspace();
  private readonly local: Int32Array;
  private readonly experts: Int32Array;

  constructor(numExperts: number) {
    this.local = new Int32Array(numExperts);
    this.experts = new Int32Array(numExperts);
  }

  run(
    phy: Int32Array,
    cnt: Int32Array,
    w: Float64Array,
    firstGpu: number,
    gpus: number,
    S: number,
  ) {
    const { ws, local, experts } = this;
    const from = firstGpu * S;
    const slots = gpus * S;
    local.fill(-1);
    let n = 0;
    for (let s = from; s < from + slots; s++) {
      const e = phy[s];
      if (local[e] < 0) {
        local[e] = n;
        experts[n++] = e;
      }
    }
    ws.reset(n, gpus, S);
    ws.count.fill(0, 0, n);
    for (let s = from; s < from + slots; s++) {
      const i = local[phy[s]];
      ws.slotExpert[s - from] = i;
      ws.count[i]++;
    }
    // weight / local count = the global per-replica load w[e] / cnt[e].
    for (let i = 0; i < n; i++) ws.weight[i] = (w[experts[i]] * ws.count[i]) / cnt[experts[i]];
    const bound = scopeLowerBound(ws);
    recomputeScopeLoads(ws);
    refineScope(ws, bound, 8 * slots);
    for (let s = 0; s < slots; s++) phy[from + s] = experts[ws.slotExpert[s]];
  }
}
