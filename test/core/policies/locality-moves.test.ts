import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  localizeFromPrevious,
  remigrationMetrics,
  synthesizeRouting,
} from "../../../src/blocks.js";
import { evaluatePlacement } from "../../../src/core/evaluation/metrics.js";
import { planTransfers } from "../../../src/core/evaluation/transfers.js";
import { localityViolation, resolveMigrationSettings } from "../../../src/core/migration/index.js";
import { toLoadMatrix } from "../../../src/core/model/matrix.js";
import { placementFromPhy2log, placementViolation } from "../../../src/core/model/placement.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import {
  dispatchStats,
  makeRouting,
  Random,
  type RebalanceOptions,
  rebalanceExperts,
} from "../../../src/index.js";
import { gpuMax, loadsOf, tokenRange } from "../../helpers/routing-loads.js";

// 2 nodes x 1 GPU x 2 slots; tokens choose {0, 1} and {2, 3}, which the previous placement
// splits over the nodes (remote nodes per token 1, sources spread). Swapping experts 0 and 3
// puts each pair on one node: 0.5 per token, for 2 changed slots, so 0.25 per slot.
const T = makeTopology(4, 4, 1, 2, 2);
const LOADS = [[5, 5, 5, 5]];
const ROUTING = makeRouting({
  tokens: 2,
  layers: 1,
  k: 2,
  experts: 4,
  topk: new Int32Array([0, 1, 2, 3]),
  rank: null,
});
const SPLIT = [[0, 2, 1, 3]];
const SHAPE = { numGpus: 2, numNodes: 2 };
// The default budget, 40% of 4 slots, is 1 slot: too few for any swap.
const BUDGET = 2;

describe("locality when rebalancing from a previous placement", () => {
  test("a swap that pays (0.25 per changed slot) is taken, and the migration figures describe it", () => {
    const r = rebalanceExperts(LOADS, 4, 1, 2, 2, {
      previous: SPLIT,
      routing: ROUTING,
      moveBudget: BUDGET,
    });
    assert.deepEqual(r.phy2log, [[3, 2, 1, 0]]);
    assert.deepEqual(r.unlocalized?.phy2log, Int32Array.from([0, 2, 1, 3]));
    assert.equal(dispatchStats(ROUTING, r.placement, SHAPE).remoteNodesPerToken, 0.5);
    const m = r.migration;
    assert.ok(m && r.transfers);
    assert.equal(m.slotsChanged, 2);
    assert.deepEqual(m.slotsChangedPerLayer, [2]);
    assert.deepEqual(m.transfers, { local: 0, intraNode: 0, interNode: 2 });
    assert.equal(r.transfers.count, 2);
    assert.equal(m.maxGpuTransfersIn, 1);
    assert.deepEqual(m.maxLoadAfter, [10]);
  });

  test("below the threshold (localityGain 0.3 > 0.25), or beyond the move budget, nothing moves", () => {
    const cases: RebalanceOptions[] = [
      { localityGain: 0.3, moveBudget: BUDGET },
      { moveBudget: 1 },
    ];
    for (const extra of cases) {
      const r = rebalanceExperts(LOADS, 4, 1, 2, 2, {
        previous: SPLIT,
        routing: ROUTING,
        ...extra,
      });
      assert.deepEqual(r.phy2log, SPLIT);
      const plain = rebalanceExperts(LOADS, 4, 1, 2, 2, {
        previous: SPLIT,
        moveBudget: extra.moveBudget,
      });
      assert.deepEqual(r.migration, plain.migration);
      assert.equal(r.transfers?.count, 0);
    }
    // 0.2 <= 0.25: taken.
    const r = rebalanceExperts(LOADS, 4, 1, 2, 2, {
      previous: SPLIT,
      routing: ROUTING,
      localityGain: 0.2,
      moveBudget: BUDGET,
    });
    assert.deepEqual(r.phy2log, [[3, 2, 1, 0]]);
  });

  test("a move restoring previous slots costs nothing: taken at any threshold, even with no budget", () => {
    const loads = toLoadMatrix(LOADS);
    const migrated = placementFromPhy2log(SPLIT, 4);
    const previous = placementFromPhy2log([[3, 2, 1, 0]], 4);
    const out = localizeFromPrevious(loads, migrated, previous, T, ROUTING, 0, {
      localityGain: 100,
    });
    assert.deepEqual(out.phy2log, previous.phy2log);
  });

  test("localityGain needs routing and previous, and a finite value >= 0", () => {
    assert.throws(
      () => rebalanceExperts(LOADS, 4, 1, 2, 2, { routing: ROUTING, localityGain: 0.1 }),
      /localityGain \(0\.1\) needs routing and previous/,
    );
    assert.throws(
      () => rebalanceExperts(LOADS, 4, 1, 2, 2, { previous: SPLIT, localityGain: 0.1 }),
      /needs routing and previous/,
    );
    assert.throws(
      () =>
        rebalanceExperts(LOADS, 4, 1, 2, 2, {
          previous: SPLIT,
          routing: ROUTING,
          localityGain: -1,
        }),
      /localityGain \(-1\) must be a finite number >= 0/,
    );
  });

  test("properties: valid placements, tolerance and budget held, truthful migration figures, fewer remote nodes", () => {
    let movedRuns = 0;
    fc.assert(
      fc.property(
        fc.record({
          nodes: fc.integer({ min: 2, max: 4 }),
          gpusPerNode: fc.integer({ min: 1, max: 2 }),
          slotsPerGpu: fc.integer({ min: 1, max: 3 }),
          extra: fc.integer({ min: 0, max: 4 }),
          k: fc.integer({ min: 1, max: 4 }),
          seed: fc.integer({ min: 0, max: 1e6 }),
          relaxed: fc.boolean(),
          tolerance: fc.constantFrom(0, 0.005, 0.05),
          gain: fc.constantFrom(0, 0.005, 0.05),
          budget: fc.constantFrom(undefined, 0, 2, Number.POSITIVE_INFINITY),
        }),
        ({ nodes, gpusPerNode, slotsPerGpu, extra, k, seed, relaxed, tolerance, gain, budget }) => {
          const gpus = nodes * gpusPerNode;
          const P = gpus * slotsPerGpu;
          let E = Math.max(k, P - Math.min(extra, P - 1));
          // Relaxed hierarchy: one group per node, so E a multiple of the nodes.
          const groups = relaxed ? nodes : 1;
          if (relaxed) E -= E % nodes;
          if (E > P || E < k || E < groups) return;
          const t = makeTopology(E, P, groups, nodes, gpus);
          const all = synthesizeRouting({ tokens: 600, layers: 2, experts: E, k, seed });
          const r =
            seed % 2 === 0
              ? makeRouting({
                  ...tokenRange(all, 300, 600),
                  rank: Int32Array.from({ length: 300 }, (_, i) => (i * 7) % gpus),
                })
              : tokenRange(all, 300, 600);
          const rng = new Random(seed);
          const noisy = (from: number, to: number) => {
            const l = loadsOf(tokenRange(all, from, to));
            for (let i = 0; i < l.data.length; i++) l.data[i] += 1 + rng.next();
            return l;
          };
          const options: RebalanceOptions = {
            relaxedHierarchy: relaxed || undefined,
            moveBudget: budget,
          };
          const previous = rebalanceExperts(
            noisy(0, 300),
            P,
            groups,
            nodes,
            gpus,
            options,
          ).placement;
          const loads = noisy(300, 600);
          const plain = rebalanceExperts(loads, P, groups, nodes, gpus, { ...options, previous });
          const out = rebalanceExperts(loads, P, groups, nodes, gpus, {
            ...options,
            previous,
            routing: r,
            localityTolerance: tolerance,
            localityGain: gain,
          });
          const p = out.placement;
          const migrated = plain.placement;
          assert.equal(placementViolation(p), null);
          assert.equal(localityViolation(p, t, relaxed), null);
          assert.deepEqual(out.unlocalized?.phy2log, migrated.phy2log);
          assert.deepEqual(p.logcnt, migrated.logcnt);
          const moveBudget = resolveMigrationSettings(options, P).moveBudget;
          const m = out.migration;
          assert.ok(m && out.transfers);
          let changed = 0;
          for (let l = 0; l < 2; l++) {
            const cap = gpuMax(loads, migrated, t, l) * (1 + tolerance) * (1 + 1e-9);
            assert.ok(gpuMax(loads, p, t, l) <= cap);
            let layerChanged = 0;
            let migratedChanged = 0;
            for (let s = 0; s < P; s++) {
              if (p.phy2log[l * P + s] !== previous.phy2log[l * P + s]) layerChanged++;
              if (migrated.phy2log[l * P + s] !== previous.phy2log[l * P + s]) migratedChanged++;
            }
            assert.ok(layerChanged <= Math.max(moveBudget, migratedChanged));
            assert.equal(m.slotsChangedPerLayer[l], layerChanged);
            assert.ok(
              Math.abs(m.maxLoadAfter[l] - gpuMax(loads, p, t, l)) <= 1e-9 * m.maxLoadAfter[l],
            );
            changed += layerChanged;
          }
          assert.equal(m.slotsChanged, changed);
          assert.equal(out.transfers.count, changed);
          const plan = planTransfers(previous, p, t);
          assert.deepEqual(m.transfers, {
            local: plan.local,
            intraNode: plan.intraNode,
            interNode: plan.interNode,
          });
          // Recomputing the migration's own figures for its own plan changes nothing.
          const again = remigrationMetrics(
            plain.migration as typeof m,
            loads,
            previous,
            migrated,
            t,
          );
          const { maxLoadAfter, afterOverFresh, worstAfterOverFresh, ...rest } = again.metrics;
          const {
            maxLoadAfter: a,
            afterOverFresh: b,
            worstAfterOverFresh: c,
            ...restPlain
          } = plain.migration as typeof m;
          assert.deepEqual(rest, restPlain);
          for (let l = 0; l < 2; l++) assert.ok(Math.abs(maxLoadAfter[l] - a[l]) <= 1e-9 * a[l]);
          assert.ok(
            Math.abs(afterOverFresh - b) <= 1e-9 && Math.abs(worstAfterOverFresh - c) <= 1e-9,
          );
          const shape = { numGpus: gpus, numNodes: nodes };
          const before = dispatchStats(r, migrated, shape).remoteNodesPerToken;
          assert.ok(dispatchStats(r, p, shape).remoteNodesPerToken <= before + 1e-12);
          if (budget === 0) assert.deepEqual(p.phy2log, previous.phy2log);
          if (p.phy2log.some((e, i) => e !== migrated.phy2log[i])) movedRuns++;
        },
      ),
      { numRuns: 120 },
    );
    // The properties are checked on plans the locality step changed, not only on kept ones.
    assert.ok(movedRuns >= 5, `${movedRuns} of 120 runs moved`);
  });

  test("held out: 8 nodes x 2 GPUs, 64 experts on 80 slots, top-6: from a balanced plan, remote nodes per token >= 15% lower, within the move budget", () => {
    // Synthetic clustered routing (seed 1): the previous plan is balanced on tokens 0..50,000,
    // the rebalance sees tokens 50,000..100,000, the figures are measured on the last 50,000.
    const all = synthesizeRouting({ tokens: 150_000, layers: 4, experts: 64, k: 6, seed: 1 });
    const [a, b, held] = [0, 1, 2].map((i) => tokenRange(all, i * 50_000, (i + 1) * 50_000));
    const previous = rebalanceExperts(loadsOf(a), 80, 1, 8, 16).placement;
    const loads = loadsOf(b);
    const plain = rebalanceExperts(loads, 80, 1, 8, 16, { previous });
    const out = rebalanceExperts(loads, 80, 1, 8, 16, { previous, routing: b });
    const shape = { numGpus: 16, numNodes: 8 };
    const before = dispatchStats(held, plain.placement, shape).remoteNodesPerToken;
    const after = dispatchStats(held, out.placement, shape).remoteNodesPerToken;
    assert.ok(after <= 0.85 * before, `remote nodes per token ${before} -> ${after}`);
    // The default budget: 40% of each layer's 80 slots.
    assert.ok(
      out.migration && out.migration.slotsChanged <= 4 * 32,
      `${out.migration?.slotsChanged}`,
    );
    const heldLoads = loadsOf(held);
    const bPlain = evaluatePlacement(heldLoads, plain.placement, shape).balancedness;
    const bOut = evaluatePlacement(heldLoads, out.placement, shape).balancedness;
    assert.ok(bOut >= 0.985 * bPlain, `balancedness ${bPlain} -> ${bOut}`);
  });
});
