import { layerMaxGpuLoad } from "../evaluation/layer-load.js";
import type { TransferPlan } from "../evaluation/transfers.js";
import { type MigrationMetrics, recordTransfers } from "../migration/metrics.js";
import { localityMode, RELAXED } from "../migration/options.js";
import { findGroupHomes } from "../migration/previous.js";
import { EplbInputError } from "../model/errors.js";
import type { LoadMatrix } from "../model/matrix.js";
import { createPlacement, type Placement } from "../model/placement.js";
import { localityOf, type Topology } from "../model/topology.js";
import { coActivationGraph, layerCoActivation } from "../routing/coactivation.js";
import {
  createDispatchWorkspace,
  type DispatchWorkspace,
  maskWords,
  tokenRemoteNodes,
} from "../routing/dispatch.js";
import type { Routing } from "../routing/routing.js";
import {
  CHECK_TOKENS,
  COACTIVATION_NEIGHBORS,
  checkRouting,
  coActivationTokens,
  LOCALITY_WORK_PER_LAYER,
  LOCALITY_WORK_PER_SLOT,
  layerOf,
  localityTolerance,
  sampleTokens,
  writeLayer,
} from "./locality.js";
import { LocalitySearch, type MoveGate } from "./locality-search.js";

// Locality when rebalancing from a previous placement: the locality search runs on the migrated
// plan, and every move it would keep is priced in slots changed against the previous placement,
// as the migration prices balance (docs/locality.md#rebalancing-from-a-previous-placement).

/**
 * Default `localityGain`: a move must cut the layer's remote nodes per token by at least this
 * much per slot it newly changes against the previous placement. On the target shape (8 nodes,
 * 64 experts on 80 slots, top-6, synthetic clustered routing) the moves the search finds pay
 * from nothing to about 0.05; with the default move budget (40% of a layer's slots) 0.002 to
 * 0.01 cut held-out remote nodes per token alike (20-22%), and 0.005 lost the least balance
 * (docs/locality.md#rebalancing-from-a-previous-placement).
 */
export const DEFAULT_LOCALITY_GAIN = 0.005;

/** Searches at `localityGain x 2^PRICE_STEPS`, then halving down to `localityGain`. */
const PRICE_STEPS = 3;

/**
 * Checks `localityGain`.
 *
 * @param value the option's value
 * @returns the gain, the default when undefined
 * @throws {EplbInputError} when it is not a finite number >= 0
 * @example
 * ```ts
 * localityGain(undefined); // 0.005
 * localityGain(-1); // throws: localityGain (-1) must be a finite number >= 0 ...
 * ```
 */
export function localityGain(value: unknown): number {
  if (value === undefined) return DEFAULT_LOCALITY_GAIN;
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new EplbInputError(
      "localityGain",
      value,
      "must be a finite number >= 0 (remote nodes per token per changed slot)",
    );
  }
  return value;
}

/** Options of {@link localizeFromPrevious}. */
export interface PricedLocalityOptions {
  localityTolerance?: number;
  /** Remote nodes per token a move must save per slot it newly changes; see {@link DEFAULT_LOCALITY_GAIN}. */
  localityGain?: number;
  relaxedHierarchy?: boolean;
}

/**
 * The gate of one layer: keeps a move of the search only when the exact dispatch rule, on a
 * sample of the routing's tokens, says it saves enough remote nodes per token per slot it newly
 * changes against the previous placement, and the layer's changed slots stay within the budget.
 * Moves that restore previous slots (no new change) need only save something.
 */
class PricedMoves implements MoveGate {
  private readonly cur: Int32Array;
  private readonly count: Int32Array;
  /** Node sets as `nodeMasks` lays them out, `words` words per expert. */
  private readonly masks: Uint32Array;
  private readonly words: number;
  private readonly tokRemote: Float64Array;
  private readonly newRemote: Float64Array;
  private readonly stamp: Int32Array;
  private readonly slotStamp: Int32Array;
  private readonly touched: Int32Array;
  private readonly experts: Int32Array;
  private readonly expertStamp: Int32Array;
  private readonly affected: Int32Array;
  private readonly ws: DispatchWorkspace;
  /** Tokens of the sample choosing each expert in the current layer (CSR). */
  private readonly start: Int32Array;
  private readonly list: Int32Array;
  private stampNo = 0;
  private prev!: Int32Array;
  private prevOffset = 0;
  private routed = 0;
  private layer = 0;
  /** Slots of the layer that differ from the previous placement. */
  changed = 0;
  budget = 0;
  threshold = 0;
  /** Remote nodes summed over the sample's routed tokens, as the layer stands. */
  remote = 0;

  constructor(
    readonly sample: Routing,
    readonly topology: Topology,
  ) {
    const { numReplicas: P, numExperts: E, numNodes: N } = topology;
    this.cur = new Int32Array(P);
    this.count = new Int32Array(E * N);
    this.words = maskWords(N);
    this.masks = new Uint32Array(E * this.words);
    this.tokRemote = new Float64Array(sample.tokens);
    this.newRemote = new Float64Array(sample.tokens);
    this.stamp = new Int32Array(sample.tokens);
    this.slotStamp = new Int32Array(P);
    this.touched = new Int32Array(P);
    this.experts = new Int32Array(E);
    this.expertStamp = new Int32Array(E);
    this.affected = new Int32Array(sample.tokens);
    this.ws = createDispatchWorkspace(sample.k, N);
    this.start = new Int32Array(E + 1);
    this.list = new Int32Array(sample.tokens * sample.k);
  }

  /** Starts layer `layer` from `phy` (the migrated slots), against `prev` at `prevOffset`. */
  reset(layer: number, phy: ArrayLike<number>, prev: Int32Array, prevOffset: number): void {
    const { numReplicas: P, numExperts: E, numNodes: N, slotsPerNode } = this.topology;
    const { cur, count, masks, start, list, sample } = this;
    this.layer = layer;
    this.prev = prev;
    this.prevOffset = prevOffset;
    count.fill(0);
    masks.fill(0);
    let changed = 0;
    for (let s = 0; s < P; s++) {
      const e = phy[s];
      cur[s] = e;
      const n = (s / slotsPerNode) | 0;
      count[e * N + n]++;
      masks[e * this.words + (n >>> 5)] |= 1 << (n & 31);
      if (e !== prev[prevOffset + s]) changed++;
    }
    this.changed = changed;
    const { tokens, layers, k, topk } = sample;
    start.fill(0);
    for (let t = 0; t < tokens; t++) {
      const at = (t * layers + layer) * k;
      for (let j = 0; j < k; j++) {
        const e = topk[at + j];
        if (e >= 0 && !this.repeated(topk, at, j)) start[e + 1]++;
      }
    }
    for (let e = 0; e < E; e++) start[e + 1] += start[e];
    const fill = this.experts; // scratch cursor per expert
    for (let e = 0; e < E; e++) fill[e] = start[e];
    this.routed = 0;
    this.remote = 0;
    for (let t = 0; t < tokens; t++) {
      const at = (t * layers + layer) * k;
      let named = false;
      for (let j = 0; j < k; j++) {
        const e = topk[at + j];
        if (e < 0 || this.repeated(topk, at, j)) continue;
        named = true;
        list[fill[e]++] = t;
      }
      this.tokRemote[t] = named ? this.tokenRemote(t) : 0;
      if (named) this.routed++;
      this.remote += this.tokRemote[t];
    }
  }

  private repeated(topk: Int32Array, at: number, j: number): boolean {
    for (let i = 0; i < j; i++) if (topk[at + i] === topk[at + j]) return true;
    return false;
  }

  /** Token `t`'s remote nodes under the current masks, averaged over its sources. */
  private tokenRemote(t: number): number {
    const { layers, k, topk, rank } = this.sample;
    const { gpusPerNode, numNodes: N } = this.topology;
    const at = (t * layers + this.layer) * k;
    if (rank !== null) {
      return tokenRemoteNodes(topk, at, this.masks, (rank[t] / gpusPerNode) | 0, this.ws);
    }
    let sum = 0;
    for (let n = 0; n < N; n++) sum += tokenRemoteNodes(topk, at, this.masks, n, this.ws);
    return sum / N;
  }

  accept(phy: Int32Array, undo: Int32Array, undoLength: number): boolean {
    const { numNodes: N, slotsPerNode } = this.topology;
    const { cur, count, masks, prev, prevOffset, slotStamp, touched, experts, expertStamp } = this;
    const no = ++this.stampNo;
    let slots = 0;
    let delta = 0;
    for (let i = 0; i < undoLength; i++) {
      const s = undo[i];
      if (slotStamp[s] === no) continue;
      slotStamp[s] = no;
      if (phy[s] === cur[s]) continue;
      touched[slots++] = s;
      const p = prev[prevOffset + s];
      delta += (phy[s] !== p ? 1 : 0) - (cur[s] !== p ? 1 : 0);
    }
    if (delta > 0 && this.changed + delta > this.budget) return false;
    // The node sets after the move; `masks` holds them while the move is judged.
    let moved = 0;
    for (let i = 0; i < slots; i++) {
      const s = touched[i];
      const n = (s / slotsPerNode) | 0;
      count[cur[s] * N + n]--;
      count[phy[s] * N + n]++;
      if (expertStamp[cur[s]] !== no) {
        expertStamp[cur[s]] = no;
        experts[moved++] = cur[s];
      }
      if (expertStamp[phy[s]] !== no) {
        expertStamp[phy[s]] = no;
        experts[moved++] = phy[s];
      }
    }
    const W = this.words;
    const oldMasks = new Uint32Array(moved * W);
    // Per moved expert, whether its node set changed.
    const differs = new Uint8Array(moved);
    let changedMasks = 0;
    for (let i = 0; i < moved; i++) {
      const e = experts[i];
      oldMasks.set(masks.subarray(e * W, e * W + W), i * W);
      masks.fill(0, e * W, e * W + W);
      for (let n = 0; n < N; n++)
        if (count[e * N + n] > 0) masks[e * W + (n >>> 5)] |= 1 << (n & 31);
      for (let w = 0; w < W; w++) if (masks[e * W + w] !== oldMasks[i * W + w]) differs[i] = 1;
      changedMasks += differs[i];
    }
    let gain = 0;
    let affected = 0;
    if (changedMasks > 0) {
      const { start, list, stamp, tokRemote, newRemote } = this;
      for (let i = 0; i < moved; i++) {
        const e = experts[i];
        if (differs[i] === 0) continue;
        for (let x = start[e]; x < start[e + 1]; x++) {
          const t = list[x];
          if (stamp[t] === no) continue;
          stamp[t] = no;
          this.affected[affected++] = t;
          newRemote[t] = this.tokenRemote(t);
          gain += tokRemote[t] - newRemote[t];
        }
      }
    }
    // Gain in the layer's remote nodes per token (mean over the sample's routed tokens).
    const perToken = this.routed > 0 ? gain / this.routed : 0;
    const ok = perToken > 1e-12 && (delta <= 0 || perToken >= this.threshold * delta);
    if (!ok) {
      for (let i = 0; i < moved; i++) {
        masks.set(oldMasks.subarray(i * W, i * W + W), experts[i] * W);
      }
      for (let i = 0; i < slots; i++) {
        const s = touched[i];
        const n = (s / slotsPerNode) | 0;
        count[cur[s] * N + n]++;
        count[phy[s] * N + n]--;
      }
      return false;
    }
    for (let i = 0; i < slots; i++) cur[touched[i]] = phy[touched[i]];
    for (let i = 0; i < affected; i++) {
      const t = this.affected[i];
      this.tokRemote[t] = this.newRemote[t];
    }
    this.remote -= gain;
    this.changed += delta;
    return true;
  }
}

/**
 * Makes a plan migrated from a previous placement local, trading locality against moves as the
 * migration trades balance: the locality search ({@link LocalitySearch}) runs on `migrated`,
 * and each move it would make is kept only when, under the exact dispatch rule on a sample of
 * the routing's tokens (all of them up to {@link CHECK_TOKENS}), it cuts the layer's remote
 * nodes per token by at least `localityGain` per slot it newly changes against `previous` (a
 * move changing no new slot, or restoring previous slots, needs only cut something), and the
 * layer's slots changed against `previous` stay within `moveBudget` (or within what the
 * migration already changed). Every layer's max GPU load stays within `localityTolerance` of
 * `migrated`'s; replica counts are kept; no GPU gets a second replica of an expert. Strict
 * hierarchies and one node: `migrated` is returned unchanged; relaxed hierarchies keep each
 * group's home node (a node holding a replica of each of its experts) covering the group.
 *
 * @param loads the loads the plan was made for
 * @param migrated the migrated plan (the start)
 * @param previous the previous placement, as the migration checked it (`toPreviousPlacement`)
 * @param topology the cluster shape
 * @param routing per-token top-k of the same layers and experts
 * @param moveBudget slots per layer that may differ from `previous`, resolved
 *   (`resolveMigrationSettings(...).moveBudget`)
 * @param options `localityTolerance`, `localityGain`, `relaxedHierarchy`
 * @returns the placement (`migrated` itself when nothing could move)
 * @throws {EplbInputError} as `localizePlacement`, or for an invalid `localityGain`
 * @example
 * ```ts
 * // 2 nodes x 1 GPU x 2 slots; tokens choose {0, 1} and {2, 3}; previous = migrated splits them
 * const t = makeTopology(4, 4, 1, 2, 2);
 * const loads = toLoadMatrix([[5, 5, 5, 5]]);
 * const routing = makeRouting({ tokens: 2, layers: 1, k: 2, experts: 4,
 *   topk: new Int32Array([0, 1, 2, 3]), rank: null });
 * const p = placementFromPhy2log([[0, 2, 1, 3]], 4);
 * // swapping experts 0 and 3 cuts remote nodes per token 1 -> 0.5 for 2 changed slots: 0.25 each
 * localizeFromPrevious(loads, p, p, t, routing, 4).phy2log; // Int32Array [3, 2, 1, 0]
 * localizeFromPrevious(loads, p, p, t, routing, 4, { localityGain: 0.3 }).phy2log; // Int32Array [0, 2, 1, 3]
 * localizeFromPrevious(loads, p, p, t, routing, 1).phy2log; // Int32Array [0, 2, 1, 3]: budget 1 slot
 * ```
 */
export function localizeFromPrevious(
  loads: LoadMatrix,
  migrated: Placement,
  previous: Placement,
  topology: Topology,
  routing: Routing,
  moveBudget: number,
  options: PricedLocalityOptions = {},
): Placement {
  const tolerance = localityTolerance(options.localityTolerance);
  const threshold = localityGain(options.localityGain);
  checkRouting(routing, loads, topology);
  const locality = localityOf(topology, options.relaxedHierarchy);
  if (topology.numNodes < 2 || locality === "strict") return migrated;
  const { numExperts: E, numReplicas: P } = topology;
  const out = createPlacement(migrated.layers, P, E);
  out.logcnt.set(migrated.logcnt);
  const search = new LocalitySearch(topology);
  const scratch = new Uint16Array(E * E);
  const mode = localityMode(topology, options.relaxedHierarchy ?? false);
  const relaxed = mode === RELAXED;
  const home = relaxed ? new Int32Array(E) : null;
  const homes = new Int32Array(topology.numGroups);
  const nodeHas = new Int32Array(relaxed ? E * topology.numNodes : 0);
  const ranks = new Int32Array(E);
  const current = new Int32Array(P);
  const statTokens = coActivationTokens(migrated.layers);
  const gate = new PricedMoves(sampleTokens(routing, CHECK_TOKENS, topology), topology);
  let changedAny = false;
  for (let l = 0; l < migrated.layers; l++) {
    const phy = migrated.phy2log.subarray(l * P, (l + 1) * P);
    const cnt = migrated.logcnt.subarray(l * E, (l + 1) * E);
    const max = layerMaxGpuLoad(layerOf(loads, migrated, l, topology), topology);
    if (home) {
      // The migration kept the relaxed contract: some node holds a replica of each expert of
      // every group; pinning one replica there keeps it.
      findGroupHomes(migrated.phy2log, l * P, topology, mode, homes, nodeHas);
      const epg = topology.expertsPerGroup;
      for (let e = 0; e < E; e++) home[e] = homes[Math.floor(e / epg)];
    }
    gate.reset(l, phy, previous.phy2log, l * P);
    gate.budget = Math.max(moveBudget, gate.changed);
    const graph = coActivationGraph(
      layerCoActivation(routing, l, statTokens, scratch),
      COACTIVATION_NEIGHBORS,
    );
    // The best moves first: under a binding budget the search, which visits slots in order,
    // would spend it on the first moves that pass; descending thresholds keep the budget for
    // the moves that pay most.
    current.set(phy);
    const work = Math.min(LOCALITY_WORK_PER_LAYER, LOCALITY_WORK_PER_SLOT * P);
    for (let step = threshold > 0 ? PRICE_STEPS : 0; step >= 0; step--) {
      gate.threshold = threshold * 2 ** step;
      // The higher thresholds only pick the best moves first: on large layers (where the work
      // is capped) a quarter of the cap each, so the four runs cost under twice one.
      search.run(
        { loads: loads.data, loadOffset: l * E, phy: current, cnt },
        graph,
        max * (1 + tolerance),
        home,
        step > 0 ? Math.min(work, LOCALITY_WORK_PER_LAYER / 4) : work,
        gate,
      );
      if (search.moves > 0) changedAny = true;
      current.set(search.phy);
    }
    writeLayer(out, l, current, ranks);
  }
  return changedAny ? out : migrated;
}

/**
 * The migration figures of `metrics` recomputed for `final` against `previous` (slots changed,
 * per layer and in all; transfers by kind and per GPU; max GPU load after and against the fresh
 * plan), with the transfer plan: what a locality step after the migration must report. The
 * layer outcomes and the figures of the previous and fresh plans are the migration's.
 *
 * @param metrics the migration's metrics
 * @param loads the loads
 * @param previous the previous placement as given (empty slots `-1` included)
 * @param final the placement returned
 * @param topology the cluster shape
 * @returns new metrics and the transfers from `previous` to `final`
 * @example
 * ```ts
 * const t = makeTopology(4, 4, 1, 2, 2);
 * const loads = toLoadMatrix([[5, 5, 5, 5]]);
 * const previous = placementFromPhy2log([[0, 2, 1, 3]], 4);
 * const m = migratePlacement(loads, previous, previous, t);
 * const r = remigrationMetrics(m.metrics, loads, previous, placementFromPhy2log([[3, 2, 1, 0]], 4), t);
 * r.metrics.slotsChanged; // 2
 * r.transfers.interNode; // 2
 * ```
 */
export function remigrationMetrics(
  metrics: MigrationMetrics,
  loads: LoadMatrix,
  previous: Placement,
  final: Placement,
  topology: Topology,
): { metrics: MigrationMetrics; transfers: TransferPlan } {
  const P = topology.numReplicas;
  const L = final.layers;
  const m: MigrationMetrics = {
    ...metrics,
    slotsChangedPerLayer: new Array(L),
    maxLoadAfter: new Array(L),
  };
  m.slotsChanged = 0;
  m.afterOverFresh = 0;
  m.worstAfterOverFresh = 0;
  for (let l = 0; l < L; l++) {
    let changed = 0;
    for (let s = 0; s < P; s++) {
      if (final.phy2log[l * P + s] !== previous.phy2log[l * P + s]) changed++;
    }
    m.slotsChanged += changed;
    m.slotsChangedPerLayer[l] = changed;
    const max = layerMaxGpuLoad(layerOf(loads, final, l, topology), topology);
    m.maxLoadAfter[l] = max;
    const fresh = m.maxLoadFresh[l];
    const after = fresh > 0 ? max / fresh : 1;
    m.afterOverFresh += after / L;
    if (after > m.worstAfterOverFresh) m.worstAfterOverFresh = after;
  }
  m.slotsChangedShare = m.slotsChanged / (L * P);
  const transfers = recordTransfers(m, previous, final, topology);
  return { metrics: m, transfers };
}
