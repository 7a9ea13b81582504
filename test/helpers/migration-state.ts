import assert from "node:assert/strict";
import type fc from "fast-check";
import { localityMode, SMOOTHING, STRICT } from "../../src/core/migration/options.js";
import { findGroupHomes } from "../../src/core/migration/previous.js";
import { loadState, MigrationWorkspace } from "../../src/core/migration/state.js";
import {
  type LoadMatrix,
  planBalanced,
  planDeepseek,
  Random,
  type Topology,
} from "../../src/index.js";
import { smallLayer } from "./small-layers.js";

/** One layer loaded into a migration workspace the way `migrateLayer` loads it. */
export interface LoadedLayer {
  ws: MigrationWorkspace;
  /** The layer's loads (one layer), as loaded. */
  loads: LoadMatrix;
  topology: Topology;
  /** The previous placement's row the state starts from. */
  previous: Int32Array;
}

/**
 * Loads `previous` (one layer's phy2log) as the previous placement and current state of a fresh
 * workspace under `weights`, with the mode, mean load and smooth-maximum temperature
 * `migrateLayer` sets.
 *
 * @example
 * ```ts
 * const { ws } = loadLayer(makeTopology(3, 4, 1, 1, 2), [6, 2, 2], [0, 1, 0, 2]);
 * ws.gpuLoad; // Float64Array [5, 5]
 * ```
 */
export function loadLayer(
  topology: Topology,
  weights: ArrayLike<number>,
  previous: ArrayLike<number>,
  relaxed = false,
): LoadedLayer {
  const ws = new MigrationWorkspace(topology);
  ws.mode = localityMode(topology, relaxed);
  const loads: LoadMatrix = {
    layers: 1,
    experts: topology.numExperts,
    data: Float64Array.from(weights),
  };
  const row = Int32Array.from(previous);
  loadState(ws, loads, 0, row, 0, true);
  let total = 0;
  for (let e = 0; e < topology.numExperts; e++) total += ws.weight[e];
  ws.meanLoad = total / topology.numGpus;
  ws.tau = SMOOTHING * ws.meanLoad;
  return { ws, loads, topology, previous: row };
}

/** One layer to migrate: a shape, its loads and the previous placement's row. */
export interface LayerCase {
  topology: Topology;
  weights: Float64Array;
  previous: Int32Array;
  relaxed: boolean;
}

/**
 * Random layers as a migration meets them: a {@link smallLayer}, a previous plan made for its
 * loads (deepseek: strict hierarchy; balanced with `relaxed`), and the loads drifted from them by
 * a seeded lognormal factor per expert. With `scramble`, the plan's slots are shuffled within
 * each node (the whole layer on a global shape): the locality contract still holds, but the
 * GPUs are far from balanced, so moves have work to do. Plain data, so that a property loads a
 * fresh workspace ({@link loadLayer}) per run and a shrunk case is printed readably.
 */
export function driftedLayer(
  options: { relaxed?: boolean; scramble?: boolean } = {},
): fc.Arbitrary<LayerCase> {
  const relaxed = options.relaxed ?? false;
  return smallLayer().map(({ topology, loads: planned, seed }) => {
    const P = topology.numReplicas;
    const loads: LoadMatrix = { layers: 1, experts: topology.numExperts, data: planned };
    const plan = relaxed
      ? planBalanced(loads, topology, { relaxedHierarchy: true })
      : planDeepseek(loads, topology);
    const rng = new Random(seed ^ 0x2545f491);
    const weights = planned.map((x) => Math.round(x * rng.lognormal(0.6)));
    const previous = plan.phy2log;
    if (options.scramble) {
      const span = topology.hierarchical ? topology.slotsPerNode : P;
      for (let from = 0; from < P; from += span) {
        for (let i = span - 1; i > 0; i--) {
          const j = rng.int(i + 1);
          [previous[from + i], previous[from + j]] = [previous[from + j], previous[from + i]];
        }
      }
    }
    return { topology, weights, previous, relaxed };
  });
}

/** {@link loadLayer} of a {@link LayerCase}. */
export function loadCase(c: LayerCase): LoadedLayer {
  return loadLayer(c.topology, c.weights, c.previous, c.relaxed);
}

/** The GPU loads of the workspace's current state, computed from scratch. */
export function stateGpuLoads(ws: MigrationWorkspace): number[] {
  const { numGpus: G, numReplicas: P, slotsPerGpu: S } = ws.topology;
  const count = new Map<number, number>();
  for (let s = 0; s < P; s++) count.set(ws.phy[s], (count.get(ws.phy[s]) ?? 0) + 1);
  const loads = new Array<number>(G).fill(0);
  for (let s = 0; s < P; s++) {
    loads[Math.floor(s / S)] += ws.weight[ws.phy[s]] / (count.get(ws.phy[s]) ?? 1);
  }
  return loads;
}

/** The smooth maximum of the current state at the workspace's temperature, from scratch. */
export function stateSmoothMax(ws: MigrationWorkspace): number {
  const loads = stateGpuLoads(ws);
  const max = Math.max(...loads);
  if (!(ws.tau > 0)) return max;
  return max + ws.tau * Math.log(loads.reduce((a, l) => a + Math.exp((l - max) / ws.tau), 0));
}

/**
 * Asserts that the workspace's incremental bookkeeping (replica counts, GPU loads, replicas per
 * GPU, the slot lists per expert, changed and lost slots, home-node counts) equals what the
 * current slots give when recomputed from scratch.
 */
export function assertConsistent(ws: MigrationWorkspace): void {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, slotsPerGpu: S, slotsPerNode } = t;
  const count = new Int32Array(E);
  const gpuHas = new Int32Array(t.numGpus * E);
  const lost = new Int32Array(E);
  const homeCount = new Int32Array(E);
  let changed = 0;
  for (let s = 0; s < P; s++) {
    const e = ws.phy[s];
    count[e]++;
    gpuHas[Math.floor(s / S) * E + e]++;
    if (e !== ws.prev[s]) {
      changed++;
      if (ws.prev[s] >= 0) lost[ws.prev[s]]++;
    }
    if (ws.home[e] === Math.floor(s / slotsPerNode)) homeCount[e]++;
  }
  assert.deepEqual([...ws.count], [...count], "count");
  assert.deepEqual([...ws.gpuHas], [...gpuHas], "gpuHas");
  assert.deepEqual([...ws.lost], [...lost], "lost");
  assert.deepEqual([...ws.homeCount], [...homeCount], "homeCount");
  assert.equal(ws.changed, changed, "changed");
  const loads = stateGpuLoads(ws);
  for (let g = 0; g < t.numGpus; g++) {
    assert.ok(Math.abs(ws.gpuLoad[g] - loads[g]) <= 1e-9 * Math.max(1, loads[g]), `gpuLoad[${g}]`);
  }
  for (let e = 0; e < E; e++) {
    const slots: number[] = [];
    let before = -1;
    for (let s = ws.head[e]; s >= 0; s = ws.next[s]) {
      assert.equal(ws.back[s], before, `back[${s}]`);
      slots.push(s);
      before = s;
      assert.ok(slots.length <= P, "slot list of expert ends");
    }
    const want: number[] = [];
    for (let s = 0; s < P; s++) if (ws.phy[s] === e) want.push(s);
    assert.deepEqual(
      slots.sort((a, b) => a - b),
      want,
      `slots of expert ${e}`,
    );
  }
}

/**
 * Asserts that no (GPU, expert) pair holds more replicas than it did in `before` (a copy of
 * `gpuHas`) or 1: a move never puts a second replica of an expert on a GPU.
 */
export function assertNoNewDuplicate(ws: MigrationWorkspace, before: Int32Array): void {
  for (let i = 0; i < before.length; i++) {
    assert.ok(ws.gpuHas[i] <= Math.max(1, before[i]), `gpuHas[${i}] rose to ${ws.gpuHas[i]}`);
  }
}

/**
 * Asserts that the current state keeps the workspace's locality mode with the homes it was
 * loaded with: strict, every replica of a group on its home node; relaxed, a replica of every
 * expert on its group's home node.
 */
export function assertHomesKept(ws: MigrationWorkspace): void {
  const t = ws.topology;
  const { numExperts: E, numReplicas: P, slotsPerNode } = t;
  const onHome = new Int32Array(E);
  for (let s = 0; s < P; s++) {
    const e = ws.phy[s];
    const node = Math.floor(s / slotsPerNode);
    if (ws.home[e] === node) onHome[e]++;
    else if (ws.mode === STRICT && ws.home[e] >= 0) {
      assert.fail(`strict: expert ${e} at slot ${s} off its home node ${ws.home[e]}`);
    }
  }
  for (let e = 0; e < E; e++) {
    if (ws.home[e] >= 0) assert.ok(onHome[e] >= 1, `expert ${e} has no replica on its home`);
  }
  const homes = new Int32Array(t.numGroups);
  const nodeHas = new Int32Array(E * t.numNodes);
  if (ws.home.some((h) => h >= 0)) {
    assert.equal(findGroupHomes(ws.phy, 0, t, ws.mode, homes, nodeHas), -1, "locality contract");
  }
}
