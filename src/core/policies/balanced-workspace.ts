import { CountsWorkspace } from "../blocks/counts/index.js";
import { ExactWorkspace } from "../blocks/exact.js";
import { GroupPackingWorkspace } from "../blocks/locality.js";
import { refineScope, repairDuplicates } from "../blocks/refine.js";
import { packScope, ScopeWorkspace, scopeLowerBound } from "../blocks/scope.js";
import type { LoadedLayer } from "../evaluation/layer-load.js";
import type { Topology } from "../model/topology.js";
import { DeepseekWorkspace, referenceShape } from "./deepseek.js";

/** Which candidate plan {@link planBalancedLayer} kept for a layer. */
export type LayerSource = "balanced" | "relaxed" | "deepseek";

/** Work units of one branch-and-bound node (a few GPU-sized loops). */
export const NODE_COST = 2;

/** All buffers the balanced policy needs for one topology, allocated once. */
export class BalancedWorkspace {
  readonly topology: Topology;
  readonly deepseek: DeepseekWorkspace;
  readonly dsPhy: Int32Array;
  readonly dsRank: Int32Array;
  readonly dsCnt: Int32Array;
  readonly candPhy: Int32Array;
  readonly candCnt: Int32Array;
  readonly relaxPhy: Int32Array;
  readonly relaxCnt: Int32Array;
  readonly nodeOfGroup: Int32Array;
  readonly nodeExperts: Int32Array;
  readonly relaxExperts: Int32Array;
  readonly relaxLocalCount: Int32Array;
  readonly rankCounter: Int32Array;
  readonly nodeOrder: Int32Array;
  readonly nodeBound: Float64Array;
  readonly nodeMax: Float64Array;
  readonly bestSlots: Int32Array;
  readonly bestCounts: Int32Array;
  readonly scope = new ScopeWorkspace();
  readonly counts = new CountsWorkspace();
  readonly groups = new GroupPackingWorkspace();
  readonly exact = new ExactWorkspace();
  /** The view a candidate's max GPU load is read through (reused, so a layer allocates none). */
  readonly candidateView: LoadedLayer;
  /** The candidate kept for the last layer planned. */
  lastSource: LayerSource = "balanced";
  /**
   * The last layer's result under the strict contract, whichever won before the relaxed candidate
   * was compared: the balanced candidate (`candPhy`) or the reference's (`dsPhy`).
   */
  strictSource: LayerSource = "balanced";
  /** The reference's max GPU load of the layer being planned: spare replicas never go above it. */
  hotCeiling = 0;
  /** Per scope (node) of the last layer: no duplicate-free plan of it beats the one found. */
  readonly nodeProven: Int32Array;
  /** Set by the scope solver: the scope just solved has no better duplicate-free plan. */
  scopeProven = false;
  /**
   * Count-search scorer for tiny scopes: packs, repairs and refines the count vector in a spare
   * scope and reports the hottest GPU's experts.
   */
  readonly evaluateByPacking = (count: Int32Array, cw: CountsWorkspace): number => {
    const sc = this.scope;
    const trial = this.trialScope;
    const n = sc.numExperts;
    trial.reset(n, sc.numGpus, sc.slotsPerGpu);
    trial.weight.set(sc.weight.subarray(0, n));
    trial.count.set(count.subarray(0, n));
    const bound = scopeLowerBound(trial);
    packScope(trial);
    repairDuplicates(trial);
    refineScope(trial, bound, 8 * n);
    let h = 0;
    for (let g = 1; g < trial.numGpus; g++) if (trial.gpuLoad[g] > trial.gpuLoad[h]) h = g;
    const max = trial.gpuLoad[h];
    cw.atMax = 0;
    for (let g = 0; g < trial.numGpus; g++) if (trial.gpuLoad[g] >= max * (1 - 1e-9)) cw.atMax++;
    cw.hotCount = 0;
    const S = trial.slotsPerGpu;
    for (let k = 0; k < S; k++) cw.hot[cw.hotCount++] = trial.slotExpert[h * S + k];
    return max;
  };
  private readonly trialScope = new ScopeWorkspace();

  /**
   * Search work done with this workspace so far, in work units: count vectors scored (each
   * weighted by its size) and branch-and-bound nodes. Never reset: read differences. A layer
   * spends at most {@link layerWorkBudget} of it, whatever the loads.
   */
  get work(): number {
    return this.counts.work + this.exact.nodes * NODE_COST;
  }

  constructor(topology: Topology) {
    const { numExperts: E, numReplicas: P, numGroups } = topology;
    this.topology = topology;
    this.deepseek = new DeepseekWorkspace(referenceShape(topology));
    this.dsPhy = new Int32Array(P);
    this.dsRank = new Int32Array(P);
    this.dsCnt = new Int32Array(E);
    this.candPhy = new Int32Array(P);
    this.candCnt = new Int32Array(E);
    this.relaxPhy = new Int32Array(P);
    this.relaxCnt = new Int32Array(E);
    this.nodeOfGroup = new Int32Array(numGroups);
    this.nodeExperts = new Int32Array(E);
    this.relaxExperts = new Int32Array(E);
    this.relaxLocalCount = new Int32Array(E);
    this.rankCounter = new Int32Array(E);
    this.nodeOrder = new Int32Array(topology.numNodes);
    this.nodeBound = new Float64Array(topology.numNodes);
    this.nodeMax = new Float64Array(topology.numNodes);
    this.nodeProven = new Int32Array(topology.numNodes);
    this.bestSlots = new Int32Array(P);
    this.bestCounts = new Int32Array(E);
    this.candidateView = {
      loads: new Float64Array(0),
      loadOffset: 0,
      phy2log: this.candPhy,
      slotOffset: 0,
      logcnt: this.candCnt,
      expertOffset: 0,
    };
  }
}
