import { firstGpuDuplicate, separateDuplicates } from "./blocks/distinct.js";
import type { TransferPlan } from "./evaluation/transfers.js";
import {
  type MigrationMetrics,
  type MigrationOptions,
  migratePlacement,
  type PreviousPlacement,
  resolveMigrationSettings,
  toPreviousPlacement,
} from "./migration/index.js";
import { EplbInputError } from "./model/errors.js";
import { checkShapeLimits } from "./model/limits.js";
import { type LoadsInput, toLoadMatrix } from "./model/matrix.js";
import {
  type Placement,
  type ReferencePlacement,
  referenceLog2phy,
  referenceRows,
} from "./model/placement.js";
import { makeTopology, type Topology } from "./model/topology.js";
import type { BalancedOptions } from "./policies/balanced.js";
import { deepseekPolicy } from "./policies/deepseek.js";
import { DEFAULT_POLICY, getPolicy } from "./policies/index.js";
import { type LocalityOptions, localizePlacement } from "./policies/locality.js";
import {
  localizeFromPrevious,
  type PricedLocalityOptions,
  remigrationMetrics,
} from "./policies/locality-moves.js";
import { checkOptionNames } from "./policies/options.js";
import type { PolicyOptions } from "./policies/policy.js";
import { makeRouting, type Routing } from "./routing/routing.js";

/**
 * Options of {@link rebalanceExperts}: the common ones below, the policy's own
 * ({@link BalancedOptions}; the deepseek policy has none) and, with `previous`,
 * {@link MigrationOptions}. A field none of them reads is refused (a misspelt option would
 * otherwise be ignored); a policy added by `registerPolicy` declares its own in `Policy.options`.
 */
export interface RebalanceOptions
  extends PolicyOptions,
    BalancedOptions,
    MigrationOptions,
    LocalityOptions,
    PricedLocalityOptions {
  /** `"deepseek"` (exact parity with the reference) or another registered policy. */
  policy?: string;
  /**
   * The placement the engine runs now (`phy2log`, `[layers][numReplicas]`, or a typed
   * {@link Placement}). When given, the result keeps experts in their current slots wherever
   * possible (see `docs/migration.md`), within `moveBudget`, `minGain` and `tolerance`.
   */
  previous?: PreviousPlacement;
  /**
   * No GPU may hold an expert twice (vllm-ascend cannot serve such a placement: see
   * `docs/engines.md`). Other policies' plans are repaired by {@link separateDuplicates}; the
   * `deepseek` policy's plan stays the reference's exactly, so one with a duplicate is refused.
   */
  distinctPerGpu?: boolean;
  /**
   * Which experts tokens chose together (per-token top-k of the same layers and experts): the
   * policy's plan is then made local, replicas of co-activated experts moved onto common nodes
   * within `localityTolerance` of its max GPU load (see `docs/locality.md`). With `previous`,
   * the migrated plan is made local, each move priced in slots changed (`localityGain`).
   */
  routing?: Routing;
}

/** The reference-shaped result plus typed views for further work (metrics, writers). */
export interface RebalanceResult extends ReferencePlacement {
  /** The same plan as flat typed arrays. */
  placement: Placement;
  /** The validated cluster shape the plan was made for. */
  topology: Topology;
  /** Name of the policy that made the plan. */
  policy: string;
  /** With `options.previous`: the weight transfers from the previous placement to this one. */
  transfers?: TransferPlan;
  /** With `options.previous`: slots changed, transfers by kind, max GPU load before and after. */
  migration?: MigrationMetrics;
  /**
   * With `options.routing`: the plan before it was made local, for comparison (with
   * `options.previous`, the migrated plan).
   */
  unlocalized?: Placement;
}

/**
 * The drop-in for DeepSeek's `rebalance_experts(weight, num_replicas, num_groups, num_nodes,
 * num_gpus)`: validates the loads and shape, runs the chosen policy on every layer and returns
 * `phy2log[L][P]`, `log2phy[L][E][X]` (slots in replica order, `-1`-padded to the largest count)
 * and `logcnt[L][E]`. With `options.previous` (the engine's current `phy2log`) it rebalances from
 * that placement instead, changing few slots, and adds `transfers` and `migration` figures;
 * with `options.routing` as well, the migrated plan is then made local, each locality move
 * priced in slots changed (`localityGain`, docs/locality.md), and those figures describe the
 * final plan.
 *
 * @throws {EplbInputError} for loads or a shape the policy cannot plan, an unknown policy or an
 * option no part of the planning reads (named with the known ones).
 * @example
 * ```ts
 * import { rebalanceExperts } from "eplb";
 * const { phy2log, logcnt } = rebalanceExperts([[10, 40, 20, 30]], 6, 1, 1, 2);
 * // phy2log = [[1, 1, 0, 2, 3, 3]], logcnt = [[1, 2, 1, 2]]
 * ```
 */
export function rebalanceExperts(
  weight: LoadsInput,
  numReplicas: number,
  numGroups: number,
  numNodes: number,
  numGpus: number,
  options: RebalanceOptions = {},
): RebalanceResult {
  const policyName = options.policy ?? DEFAULT_POLICY;
  const policy = getPolicy(policyName);
  checkOptionNames(options, policy);
  const loads = toLoadMatrix(weight);
  const topology = makeTopology(loads.experts, numReplicas, numGroups, numNodes, numGpus);
  checkShapeLimits({ layers: loads.layers, replicas: numReplicas });
  const routing = options.routing === undefined ? undefined : makeRouting(options.routing);
  if (!routing && options.localityTolerance !== undefined) {
    throw new EplbInputError(
      "localityTolerance",
      options.localityTolerance,
      "needs routing: without it the plan is not made local",
    );
  }
  if (options.localityGain !== undefined && !(routing && options.previous !== undefined)) {
    throw new EplbInputError(
      "localityGain",
      options.localityGain,
      "needs routing and previous: it prices locality moves in slots changed from previous",
    );
  }
  const fromPrevious = options.previous !== undefined;
  let placement = policy.plan(loads, topology, options);
  const unlocalized = routing && !fromPrevious ? placement : undefined;
  if (routing && !fromPrevious) {
    placement = localizePlacement(loads, placement, topology, routing, options);
  }
  if (options.distinctPerGpu) {
    if (policyName === "deepseek") refuseDuplicate(placement, topology, "policy", policyName);
    else placement = separateDuplicates(loads, placement, topology);
  }
  if (options.previous !== undefined) {
    const m = migratePlacement(loads, options.previous, placement, topology, options);
    let { placement: final, transfers, metrics } = m;
    if (routing) {
      const given = toPreviousPlacement(
        options.previous,
        loads.layers,
        topology,
        options.relaxedHierarchy,
      );
      const budget = resolveMigrationSettings(options, topology.numReplicas).moveBudget;
      final = localizeFromPrevious(loads, final, given, topology, routing, budget, options);
      if (final !== m.placement) {
        ({ metrics, transfers } = remigrationMetrics(metrics, loads, given, final, topology));
      }
    }
    if (options.distinctPerGpu) refuseDuplicate(final, topology, "previous", policyName);
    const result = lazyReferenceResult(final, topology, policyName);
    result.transfers = transfers;
    result.migration = metrics;
    if (routing) result.unlocalized = m.placement;
    return result;
  }
  // Only the deepseek policy's own plan is known to be held by nothing else (a policy registered
  // in its place, or the routing's unlocalized plan, may share it).
  const unreachable = policy === deepseekPolicy && unlocalized === undefined;
  const result = lazyReferenceResult(placement, topology, policyName, unreachable);
  if (unlocalized) result.unlocalized = unlocalized;
  return result;
}

/** A result's nested arrays once built, its placement and the plan the arrays are built from. */
class LazyReference {
  phy2log: number[][] | undefined = undefined;
  log2phy: number[][][] | undefined = undefined;
  logcnt: number[][] | undefined = undefined;
  /** What `result.placement` reads: the plan, or what was assigned to it. */
  placement: Placement;
  /** The plan as returned: the planner's own until the caller can reach it, then a copy. */
  source: Placement;

  constructor(plan: Placement, unreachable: boolean) {
    this.placement = plan;
    this.source = unreachable ? plan : copyPlan(plan);
  }

  /** Called before the plan reaches the caller, who may then edit it. */
  handOut(): void {
    if (this.source === this.placement && !(this.phy2log && this.log2phy && this.logcnt)) {
      this.source = copyPlan(this.placement);
    }
  }
}

/** A private copy of a plan: its three arrays share one allocation. */
function copyPlan(placement: Placement): Placement {
  const { layers, numReplicas, numExperts } = placement;
  const slots = layers * numReplicas;
  const copy = new Int32Array(2 * slots + layers * numExperts);
  copy.set(placement.phy2log, 0);
  copy.set(placement.replicaRank, slots);
  copy.set(placement.logcnt, 2 * slots);
  return {
    layers,
    numReplicas,
    numExperts,
    phy2log: copy.subarray(0, slots),
    replicaRank: copy.subarray(slots, 2 * slots),
    logcnt: copy.subarray(2 * slots),
  };
}

const LAZY = Symbol("eplb.lazyReference");

interface LazyResult {
  [LAZY]: LazyReference;
}

// One getter per property, shared by every result: per-result closures measured 4 ms more per
// call on dsv3-prefill when callers read the arrays in a loop (the built arrays outlived the
// calls until a full garbage collection).
const LAZY_PROPERTIES: PropertyDescriptorMap = {
  phy2log: {
    enumerable: true,
    configurable: true,
    get(this: LazyResult) {
      const lazy = this[LAZY];
      const p = lazy.source;
      lazy.phy2log ??= referenceRows(p.phy2log, p.layers, p.numReplicas);
      return lazy.phy2log;
    },
    set(this: LazyResult, value: number[][]) {
      this[LAZY].phy2log = value;
    },
  },
  log2phy: {
    enumerable: true,
    configurable: true,
    get(this: LazyResult) {
      const lazy = this[LAZY];
      lazy.log2phy ??= referenceLog2phy(lazy.source);
      return lazy.log2phy;
    },
    set(this: LazyResult, value: number[][][]) {
      this[LAZY].log2phy = value;
    },
  },
  logcnt: {
    enumerable: true,
    configurable: true,
    get(this: LazyResult) {
      const lazy = this[LAZY];
      const p = lazy.source;
      lazy.logcnt ??= referenceRows(p.logcnt, p.layers, p.numExperts);
      return lazy.logcnt;
    },
    set(this: LazyResult, value: number[][]) {
      this[LAZY].logcnt = value;
    },
  },
  placement: {
    enumerable: true,
    configurable: true,
    get(this: LazyResult) {
      const lazy = this[LAZY];
      lazy.handOut();
      return lazy.placement;
    },
    set(this: LazyResult, value: Placement) {
      this[LAZY].placement = value;
    },
  },
};

/**
 * The result with `phy2log`, `log2phy` and `logcnt` built on first read: the nested arrays (about
 * 15,000 small arrays for DeepSeek-V3) cost as much as the plan itself, and callers that go on
 * with the typed `placement` never read them. They are enumerable own properties, so spreading,
 * `JSON.stringify`, `structuredClone` and deep equality see plain data; each is built once, from
 * the plan as returned (a later edit of `placement` cannot change them), and may be reassigned
 * like a data property. That takes a copy of the plan: here, or, when `unreachable` (nothing but
 * the result holds the plan: the built-in deepseek policy's fresh one), only once `placement` is
 * first read while a nested array is still unbuilt, so a drop-in caller that reads only the
 * nested arrays never pays for it (190 kB on DeepSeek-V3's shape).
 */
function lazyReferenceResult(
  placement: Placement,
  topology: Topology,
  policy: string,
  unreachable = false,
): RebalanceResult {
  const result = {} as RebalanceResult;
  Object.defineProperty(result, LAZY, { value: new LazyReference(placement, unreachable) });
  Object.defineProperties(result, LAZY_PROPERTIES);
  result.topology = topology;
  result.policy = policy;
  return result;
}

/** Throws when a GPU of `placement` holds an expert twice, naming the layer, GPU and expert. */
function refuseDuplicate(
  placement: Placement,
  topology: Topology,
  source: "policy" | "previous",
  policy: string,
): void {
  const d = firstGpuDuplicate(placement, topology.numGpus);
  if (d === null) return;
  const where = `expert ${d.expert} twice on GPU ${d.gpu} of layer ${d.layer}`;
  const cannot = "which an engine that needs distinct experts per GPU (vllm-ascend) cannot serve";
  if (source === "policy") {
    throw new EplbInputError(
      "policy",
      policy,
      `puts ${where} (the reference's plan, kept exactly), ${cannot}: use the balanced policy (--policy balanced)`,
    );
  }
  throw new EplbInputError(
    "previous",
    where,
    `is kept when rebalancing from the previous placement, ${cannot}: plan without it`,
  );
}
