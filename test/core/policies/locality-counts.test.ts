import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  coActivationGraph,
  layerCoActivation,
  localizePlacement,
  synthesizeRouting,
} from "../../../src/blocks.js";
import type { LoadMatrix } from "../../../src/core/model/matrix.js";
import {
  type Placement,
  placementFromPhy2log,
  placementViolation,
} from "../../../src/core/model/placement.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import { localizeCounts } from "../../../src/core/policies/locality-counts.js";
import {
  dispatchStats,
  makeRouting,
  planBalanced,
  Random,
  type Routing,
} from "../../../src/index.js";
import { referenceRemoteNodes } from "../../helpers/dispatch-reference.js";
import { gpuMax } from "../../helpers/routing-loads.js";

/** Every ordering of `xs` (distinct orderings only). */
function permutations(xs: number[]): number[][] {
  if (xs.length <= 1) return [xs];
  const out = new Map<string, number[]>();
  for (let i = 0; i < xs.length; i++) {
    const rest = [...xs.slice(0, i), ...xs.slice(i + 1)];
    for (const p of permutations(rest)) {
      const q = [xs[i], ...p];
      out.set(q.join(","), q);
    }
  }
  return [...out.values()];
}

// 2 nodes x 1 GPU x 3 slots. Hub expert 0 is chosen with 1 (tokens {0, 1}) and with 3 ({0, 3});
// 1 and 3 are too heavy to share a node; cold expert 2 has a spare replica on each node.
const t = makeTopology(5, 6, 1, 2, 2);
const routing: Routing = makeRouting({
  tokens: 4,
  layers: 1,
  k: 2,
  experts: 5,
  topk: new Int32Array([0, 1, 0, 3, 0, 1, 0, 3]),
  rank: null,
});
const base = placementFromPhy2log([[1, 0, 2, 3, 4, 2]], 5);

describe("locality: replica counts chosen", () => {
  test("a tiny case where only a count change cuts remote nodes: the hub gains a replica paid by the cold expert's spare", () => {
    const loads: LoadMatrix = { layers: 1, experts: 5, data: new Float64Array([10, 30, 2, 30, 2]) };
    // Node loads 41 and 33: the cap is 41 with tolerance 0.
    assert.equal(gpuMax(loads, base, t, 0), 41);
    assert.equal(referenceRemoteNodes(routing, base, 2, 2).overall, 0.75);
    // Positions alone (counts kept): the best of every arrangement within the cap is 0.75.
    let bestPositions = Number.POSITIVE_INFINITY;
    for (const row of permutations([1, 0, 2, 3, 4, 2])) {
      const p = placementFromPhy2log([row], 5);
      if (gpuMax(loads, p, t, 0) > 41) continue;
      bestPositions = Math.min(bestPositions, referenceRemoteNodes(routing, p, 2, 2).overall);
    }
    assert.equal(bestPositions, 0.75);
    const out = localizePlacement(loads, base, t, routing, { localityTolerance: 0 });
    assert.equal(placementViolation(out), null);
    // Expert 0 on both nodes, expert 2 down to one replica: {0, 1} and {0, 3} each need a remote
    // node only from the node without their partner.
    assert.deepEqual(Array.from(out.logcnt), [2, 1, 1, 1, 1]);
    assert.equal(referenceRemoteNodes(routing, out, 2, 2).overall, 0.5);
    assert.ok(gpuMax(loads, out, t, 0) <= 41);
  });

  test("40 nodes: the hub gains a replica on node 39 (second word of the node sets)", () => {
    // The tiny case spread over 40 nodes x 1 GPU x 3 slots: node 0 holds [1, 0, 2], node 39
    // [3, 4, 2], nodes 1..38 cold fillers (experts 5..118, load 1).
    const E = 119;
    const row = [1, 0, 2];
    for (let e = 5; e < E; e++) row.push(e);
    row.push(3, 4, 2);
    const p = placementFromPhy2log([row], E);
    const wide = makeTopology(E, 120, 1, 40, 40);
    const data = new Float64Array(E).fill(1);
    data.set([10, 30, 2, 30, 2]);
    const loads: LoadMatrix = { layers: 1, experts: E, data };
    const r = makeRouting({ ...routing, experts: E });
    const shape = { numGpus: 40, numNodes: 40 };
    const check = { remote: (q: Placement, l: number) => dispatchStats(r, q, shape).perLayer[l] };
    const before = check.remote(p, 0);
    const graph = coActivationGraph(layerCoActivation(r, 0));
    assert.equal(localizeCounts(loads, p, 0, graph, 41, null, check, wide), 1);
    assert.equal(placementViolation(p), null);
    assert.deepEqual([p.phy2log[119], p.logcnt[0], p.logcnt[2]], [0, 2, 1]);
    assert.ok(check.remote(p, 0) < before);
  });

  test("the load cap binds: when the hub's second replica would overload a node, counts stay", () => {
    // Expert 4 heavier: node 1 would carry 30 + 10 + 5 = 45 > 41, and no swap between the
    // nodes brings both within 41.
    const loads: LoadMatrix = {
      layers: 1,
      experts: 5,
      data: new Float64Array([10, 30, 2, 30, 10]),
    };
    const heavier = placementFromPhy2log([[1, 0, 2, 3, 4, 2]], 5);
    assert.equal(gpuMax(loads, heavier, t, 0), 41);
    const out = localizePlacement(loads, heavier, t, routing, { localityTolerance: 0 });
    assert.deepEqual(Array.from(out.logcnt), Array.from(heavier.logcnt));
    assert.ok(gpuMax(loads, out, t, 0) <= 41);
    // With room (tolerance 10%: cap 45.1) the count change is made.
    const roomy = localizePlacement(loads, heavier, t, routing, { localityTolerance: 0.1 });
    assert.equal(roomy.logcnt[0], 2);
    assert.ok(gpuMax(loads, roomy, t, 0) <= 41 * 1.1);
  });

  test("property: valid plans, every expert kept, tolerance held, never more remote nodes; counts do change", () => {
    let changed = 0;
    fc.assert(
      fc.property(
        fc.record({
          nodes: fc.integer({ min: 2, max: 4 }),
          gpusPerNode: fc.integer({ min: 1, max: 3 }),
          slotsPerGpu: fc.integer({ min: 2, max: 4 }),
          k: fc.integer({ min: 2, max: 4 }),
          seed: fc.integer({ min: 0, max: 1e6 }),
          tolerance: fc.constantFrom(0, 0.02, 0.1),
        }),
        ({ nodes, gpusPerNode, slotsPerGpu, k, seed, tolerance }) => {
          const gpus = nodes * gpusPerNode;
          const P = gpus * slotsPerGpu;
          const E = P - nodes - 1;
          if (E < k + 1) return;
          const topo = makeTopology(E, P, 1, nodes, gpus);
          const r = synthesizeRouting({
            tokens: 400,
            layers: 2,
            experts: E,
            k,
            seed,
            clusters: Math.min(nodes, E),
          });
          const data = new Float64Array(2 * E);
          for (let i = 0; i < r.topk.length; i++) data[(Math.floor(i / k) % 2) * E + r.topk[i]]++;
          const rng = new Random(seed);
          for (let i = 0; i < data.length; i++) data[i] += rng.next();
          const loads: LoadMatrix = { layers: 2, experts: E, data };
          const start = planBalanced(loads, topo);
          const out = localizePlacement(loads, start, topo, r, { localityTolerance: tolerance });
          assert.equal(placementViolation(out), null);
          for (let i = 0; i < out.logcnt.length; i++) assert.ok(out.logcnt[i] >= 1);
          if (out.logcnt.some((c, i) => c !== start.logcnt[i])) changed++;
          const shape = { numGpus: gpus, numNodes: nodes };
          const b = dispatchStats(r, start, shape).perLayer;
          const a = dispatchStats(r, out, shape).perLayer;
          for (let l = 0; l < 2; l++) {
            assert.ok(
              gpuMax(loads, out, topo, l) <=
                gpuMax(loads, start, topo, l) * (1 + tolerance) * (1 + 1e-9),
            );
            assert.ok(a[l] <= b[l] + 1e-12);
          }
        },
      ),
      { numRuns: 60, seed: 17 },
    );
    assert.ok(changed > 0, "the count pass never changed a count");
  });
});
