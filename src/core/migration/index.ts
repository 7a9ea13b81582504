import { relabelLayer } from "../blocks/assignment.js";
import { minMaxReplicaLoad } from "../blocks/replication.js";
import type { LoadMatrix } from "../model/matrix.js";
import { createPlacement, type Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import { fillEmptySlots, recountFromGiven } from "./empty-slots.js";
import {
  type LayerMigration,
  type LayerOutcome,
  type Migration,
  type MigrationMetrics,
  recordTransfers,
} from "./metrics.js";
import {
  localityMode,
  type MigrationOptions,
  type MigrationSettings,
  RELAXED,
  resolveMigrationSettings,
  SMOOTHING,
  STRICT,
} from "./options.js";
import { polish } from "./polish.js";
import { type PreviousPlacement, toPreviousPlacement } from "./previous.js";
import { alignCounts, goalCounts, repair } from "./repair.js";
import { keepGpuSlots } from "./slots.js";
import {
  exactMax,
  loadState,
  MigrationWorkspace,
  placedSmoothMax,
  smoothMax,
  writeLayer,
} from "./state.js";
import { buildGroupTrade, nodeExcess, TRADE_TRIGGER } from "./trades.js";

/**
 * Rebalances one layer starting from its previous placement: the unit a simulator calls every
 * rebalance. The layer's replica counts move to the fresh plan's (in strict hierarchical layers,
 * water-filling within each node), one slot each; a repair brings its largest GPU load within
 * `tolerance` of the fresh plan's (or without a fresh plan, of the lower bound); a polish then
 * lowers its smooth maximum GPU load ({@link smoothMaxGpuLoad}: the GPUs just below the largest
 * count too, as they do on future traffic) by swaps worth at least `slotGain` per slot. In strict
 * hierarchical layers whose node loads drifted apart further than the fresh plan's, trading one
 * group between two nodes is tried too; when the result still falls short of the target and the
 * fresh plan, relabelled onto the previous placement, fits the budget and is better by
 * `minGain`, the fresh plan is taken. The layer changes only if its smooth maximum drops by at
 * least `minGain`. At most `moveBudget` slots change, and the locality contract of the mode is
 * kept. Writes layer `layer` of `out` (which may be `previous` itself).
 *
 * @example
 * ```ts
 * const t = makeTopology(4, 6, 1, 1, 3);
 * const loads = toLoadMatrix([[10, 40, 20, 30]]);
 * const previous = placementFromPhy2log([[0, 1, 2, 1, 3, 3]], 4); // made for other loads
 * const out = createPlacement(1, 6, 4);
 * migrateLayer(loads, previous, null, 0, out, resolveMigrationSettings({ moveBudget: 2 }, 6),
 *   new MigrationWorkspace(t));
 * // { outcome: "repaired", slotsChanged: 2, maxBefore: 40, maxAfter: 35, ... }
 * ```
 */
export function migrateLayer(
  loads: LoadMatrix,
  previous: Placement,
  fresh: Placement | null,
  layer: number,
  out: Placement,
  settings: MigrationSettings,
  ws: MigrationWorkspace,
): LayerMigration {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, numGpus: G } = t;
  ws.mode = localityMode(t, settings.relaxedHierarchy);
  ws.goalActive = false;
  loadState(ws, loads, layer, previous.phy2log, layer * P, true);
  let total = 0;
  for (let e = 0; e < E; e++) total += ws.weight[e];
  ws.meanLoad = total / G;
  ws.tau = SMOOTHING * ws.meanLoad;
  const maxBefore = exactMax(ws);
  const smoothBefore = smoothMax(ws);
  let maxFresh = Number.NaN;
  let smoothFresh = Number.NaN;
  let target: number;
  if (fresh !== null) {
    smoothFresh = placedSmoothMax(ws, fresh, layer);
    maxFresh = ws.loadMax;
    target = maxFresh * (1 + settings.tolerance);
  } else {
    const bound = Math.max(total / G, minMaxReplicaLoad(ws.weight, E, P, ws.replication));
    target = bound * (1 + settings.tolerance);
  }
  const result: LayerMigration = {
    outcome: "kept",
    slotsChanged: 0,
    maxBefore,
    maxAfter: maxBefore,
    maxFresh,
    target,
    smoothBefore,
    smoothAfter: smoothBefore,
  };
  const budget = settings.moveBudget;
  const keep = 1 - settings.minGain;
  if (budget > 0) {
    // The trade is built from the previous state, before anything changes it.
    const tradeChanged =
      ws.mode === STRICT && (fresh === null || nodeExcess(ws, fresh, layer) > TRADE_TRIGGER)
        ? buildGroupTrade(ws, budget)
        : -1;
    improve(ws, fresh, layer, target, fresh === null ? 0 : smoothFresh, budget, settings);
    let outcome: LayerOutcome = "repaired";
    let changed = ws.changed;
    let smooth = smoothMax(ws);
    let maxAfter = exactMax(ws);
    if (changed > 0 && !(smooth <= smoothBefore * keep && maxAfter <= maxBefore)) {
      // Small budgets: the count changes alone may spend them and fail the gate; repair and
      // polish with free counts, as before counts were held, may still pass it.
      loadState(ws, loads, layer, previous.phy2log, layer * P, true);
      improve(ws, fresh, layer, target, fresh === null ? 0 : smoothFresh, budget, settings, false);
      changed = ws.changed;
      smooth = smoothMax(ws);
      maxAfter = exactMax(ws);
    }
    const best = ws.best;
    best.set(ws.phy);
    // Without a fresh plan to compare node loads with, a trade is tried when repair falls short.
    if (tradeChanged > 0 && tradeChanged < budget && (fresh !== null || maxAfter > target)) {
      loadState(ws, loads, layer, ws.trade.row, 0, false);
      improve(ws, fresh, layer, target, fresh === null ? 0 : smoothFresh, budget, settings);
      const traded = smoothMax(ws);
      const tradedMax = exactMax(ws);
      if (traded < smooth && tradedMax <= maxBefore) {
        outcome = "regrouped";
        changed = ws.changed;
        smooth = traded;
        maxAfter = tradedMax;
        best.set(ws.phy);
      }
    }
    if (maxAfter > target && fresh !== null && smoothFresh < smooth && budget > changed) {
      const relabelled = relabelLayer(
        ws.prev,
        0,
        fresh.phy2log,
        layer * P,
        t,
        ws.candidate,
        0,
        ws.relabel,
      );
      if (relabelled <= budget && smoothFresh <= smooth * keep) {
        best.set(ws.candidate);
        changed = relabelled;
        smooth = smoothFresh;
        maxAfter = maxFresh;
        outcome = "relabelled";
      }
    }
    if (changed > 0) {
      // The layer's largest GPU load never rises either: every move of the repair and the
      // polish keeps it, and a count change or trade that raised it is not taken.
      if (smooth <= smoothBefore * keep && maxAfter <= maxBefore) {
        // An expert that stays on a GPU keeps one of its slots there (no local copy); the order
        // within a GPU changes no load, and unchanged slots can only grow.
        changed = keepGpuSlots(previous.phy2log, layer * P, best, 0, P, t.slotsPerGpu);
        result.outcome = outcome;
        result.slotsChanged = changed;
        result.maxAfter = maxAfter;
        result.smoothAfter = smooth;
        writeLayer(out, layer, best, E, P, ws.rankCount);
        return result;
      }
      result.outcome = "gated";
    }
  }
  writeLayer(out, layer, ws.prev, E, P, ws.rankCount);
  return result;
}

/**
 * From the state loaded in `ws`: replica counts to their goal ({@link goalCounts},
 * {@link alignCounts}; unless `counts` is false), then {@link repair} toward `target` with the
 * counts held there, then {@link polish} down to the fresh plan's smooth maximum `smoothFresh`
 * at most.
 */
function improve(
  ws: MigrationWorkspace,
  fresh: Placement | null,
  layer: number,
  target: number,
  smoothFresh: number,
  budget: number,
  settings: MigrationSettings,
  counts = true,
): void {
  // Relaxed layers without a fresh plan have no goal that respects the home nodes.
  if (counts && (fresh !== null || ws.mode !== RELAXED)) {
    goalCounts(ws, fresh, layer);
    alignCounts(ws, budget);
    exactMax(ws);
    ws.goalActive = true;
  }
  repair(ws, target, budget);
  // Beyond the fresh plan's smooth maximum, moves buy balance a plan from scratch would not have.
  polish(ws, budget, settings.slotGain * ws.meanLoad, smoothFresh);
  ws.goalActive = false;
}

/**
 * Rebalances every layer from a previous placement (see {@link migrateLayer}), plans the weight
 * transfers and measures the result against the previous placement and the fresh plan. The
 * previous placement is checked with {@link toPreviousPlacement}.
 *
 * @example
 * ```ts
 * const t = makeTopology(256, 288, 8, 4, 32);
 * const before = lognormalLoads(58, 256, 1.0, 7);
 * const previousPhy2log = rebalanceExperts(before, 288, 8, 4, 32, { policy: "deepseek" }).phy2log;
 * const loads = { ...before, data: before.data.map((x, i) => x * (1 + 0.05 * Math.sin(i))) }; // drift
 * const fresh = planDeepseek(loads, t);
 * const m = migratePlacement(loads, previousPhy2log, fresh, t, { moveBudget: 0.1 });
 * // m.metrics.slotsChangedShare = 0.02..., m.metrics.afterOverFresh = 1.005..., m.transfers.local = 0
 * ```
 */
export function migratePlacement(
  loads: LoadMatrix,
  previous: PreviousPlacement,
  fresh: Placement,
  topology: Topology,
  options: MigrationOptions = {},
): Migration {
  const { numExperts: E, numReplicas: P } = topology;
  const settings = resolveMigrationSettings(options, P);
  const given = toPreviousPlacement(previous, loads.layers, topology, settings.relaxedHierarchy);
  // Empty slots (-1, vLLM's elastic EP) are filled first: the plan starts from the filled
  // placement, and every count below is taken against the placement as given.
  const hasEmpty = given.phy2log.indexOf(-1) >= 0;
  const prev = hasEmpty ? fillEmptySlots(loads, given, topology.slotsPerGpu) : given;
  const out = createPlacement(loads.layers, P, E);
  const ws = new MigrationWorkspace(topology);
  const layers: LayerMigration[] = new Array(loads.layers);
  const relabelled = new Int32Array(P);
  const metrics: MigrationMetrics = {
    moveBudget: settings.moveBudget,
    minGain: settings.minGain,
    tolerance: settings.tolerance,
    slotGain: settings.slotGain,
    slotsChanged: 0,
    slotsChangedShare: 0,
    slotsChangedPerLayer: new Array(loads.layers),
    layersKept: 0,
    layersGated: 0,
    layersRepaired: 0,
    layersRegrouped: 0,
    layersRelabelled: 0,
    transfers: { local: 0, intraNode: 0, interNode: 0 },
    maxGpuTransfersIn: 0,
    maxGpuTransfersOut: 0,
    maxLoadBefore: new Array(loads.layers),
    maxLoadAfter: new Array(loads.layers),
    maxLoadFresh: new Array(loads.layers),
    beforeOverFresh: 0,
    afterOverFresh: 0,
    worstAfterOverFresh: 0,
    freshSlotsChanged: 0,
    freshRelabelledSlotsChanged: options.compareRelabelled ? 0 : null,
  };
  for (let l = 0; l < loads.layers; l++) {
    const r = migrateLayer(loads, prev, fresh, l, out, settings, ws);
    layers[l] = r;
    metrics.slotsChanged += r.slotsChanged;
    metrics.slotsChangedPerLayer[l] = r.slotsChanged;
    if (r.outcome === "kept") metrics.layersKept++;
    else if (r.outcome === "gated") metrics.layersGated++;
    else if (r.outcome === "repaired") metrics.layersRepaired++;
    else if (r.outcome === "regrouped") metrics.layersRegrouped++;
    else metrics.layersRelabelled++;
    metrics.maxLoadBefore[l] = r.maxBefore;
    metrics.maxLoadAfter[l] = r.maxAfter;
    metrics.maxLoadFresh[l] = r.maxFresh;
    const before = r.maxFresh > 0 ? r.maxBefore / r.maxFresh : 1;
    const after = r.maxFresh > 0 ? r.maxAfter / r.maxFresh : 1;
    metrics.beforeOverFresh += before / loads.layers;
    metrics.afterOverFresh += after / loads.layers;
    if (after > metrics.worstAfterOverFresh) metrics.worstAfterOverFresh = after;
    for (let s = 0; s < P; s++) {
      if (fresh.phy2log[l * P + s] !== given.phy2log[l * P + s]) metrics.freshSlotsChanged++;
    }
    if (metrics.freshRelabelledSlotsChanged !== null) {
      metrics.freshRelabelledSlotsChanged += relabelLayer(
        prev.phy2log,
        l * P,
        fresh.phy2log,
        l * P,
        topology,
        relabelled,
        0,
        ws.relabel,
      );
    }
  }
  if (hasEmpty) recountFromGiven(loads, given, out, topology, metrics);
  metrics.slotsChangedShare = metrics.slotsChanged / (loads.layers * P);
  const transfers = recordTransfers(metrics, given, out, topology);
  return { placement: out, metrics, transfers, layers };
}

// The public names of the migration, wherever they are defined in this folder.
export {
  type LayerMigration,
  type LayerOutcome,
  type Migration,
  type MigrationMetrics,
  smoothMaxGpuLoad,
} from "./metrics.js";
export {
  DEFAULT_MIN_GAIN,
  DEFAULT_MOVE_BUDGET,
  DEFAULT_SLOT_GAIN,
  DEFAULT_TOLERANCE,
  type MigrationOptions,
  type MigrationSettings,
  resolveMigrationSettings,
  SMOOTHING,
} from "./options.js";
export { localityViolation, type PreviousPlacement, toPreviousPlacement } from "./previous.js";
export { MigrationWorkspace } from "./state.js";
