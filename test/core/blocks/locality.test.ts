import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  EXACT_GROUP_PARTITIONS,
  type GroupPackingShape,
  GroupPackingWorkspace,
  groupPartitionCount,
  offNodeShare,
  packGroupsToNodes,
} from "../../../src/core/blocks/locality.js";
import { greedyPacking } from "../../../src/core/blocks/packing.js";
import { waterFillCounts } from "../../../src/core/blocks/replication.js";
import { hierarchyBounds } from "../../../src/core/evaluation/hierarchy.js";
import { makeTopology, placementFromPhy2log, Random, toLoadMatrix } from "../../../src/index.js";

const factorial = (n: number): number => (n <= 1 ? 1 : n * factorial(n - 1));

/** A node's bound, plainly: max(its load per GPU, its experts water-filled over its slots). */
function plainBound(loads: number[], shape: GroupPackingShape, groups: number[]): number {
  const gs = shape.numExperts / shape.numGroups;
  const w = groups.flatMap((g) => loads.slice(g * gs, (g + 1) * gs));
  const total = w.reduce((s, x) => s + x, 0);
  const replica = waterFillCounts(
    Float64Array.from(w),
    w.length,
    shape.slotsPerNode,
    new Int32Array(w.length),
  );
  return Math.max(total / shape.gpusPerNode, replica);
}

/** Every way to split the groups into equal unordered node sets. */
function partitions(numGroups: number, numNodes: number): number[][][] {
  const per = numGroups / numNodes;
  const out: number[][][] = [];
  const walk = (left: number[], acc: number[][]) => {
    if (left.length === 0) {
      out.push(acc);
      return;
    }
    const [first, ...rest] = left;
    const choose = (start: number, pick: number[]) => {
      if (pick.length === per - 1) {
        walk(
          rest.filter((g) => !pick.includes(g)),
          [...acc, [first, ...pick]],
        );
        return;
      }
      for (let i = start; i < rest.length; i++) choose(i + 1, [...pick, rest[i]]);
    };
    choose(0, []);
  };
  walk([...Array(numGroups).keys()], []);
  return out;
}

/** The node sets nodeOfGroup describes, and their plain bounds. */
function boundsOf(loads: number[], shape: GroupPackingShape, nodeOfGroup: Int32Array): number[] {
  const sets: number[][] = Array.from({ length: shape.numNodes }, () => []);
  for (let g = 0; g < shape.numGroups; g++) sets[nodeOfGroup[g]].push(g);
  const per = shape.numGroups / shape.numNodes;
  assert.ok(
    sets.every((s) => s.length === per),
    `every node holds ${per} groups: ${nodeOfGroup}`,
  );
  return sets.map((s) => plainBound(loads, shape, s));
}

function randomShape(rng: Random, numGroups: number, numNodes: number) {
  const gs = 1 + rng.int(3);
  const gpusPerNode = 1 + rng.int(3);
  const numExperts = numGroups * gs;
  const slotsPerNode = Math.ceil((numExperts / numNodes) * (1 + rng.int(3) / 2)) + rng.int(2);
  const shape: GroupPackingShape = { numExperts, numGroups, numNodes, gpusPerNode, slotsPerNode };
  const skew = rng.int(3);
  const loads = Array.from({ length: numExperts }, () =>
    rng.int(5) === 0 ? 0 : Math.round(rng.lognormal(skew) * 10),
  );
  return { shape, loads };
}

describe("groupPartitionCount", () => {
  test("numGroups! / (perNode!^numNodes numNodes!): the documented 105 and 10395, and the trivial cases", () => {
    assert.equal(groupPartitionCount(8, 4), 105);
    assert.equal(groupPartitionCount(12, 6), 10395);
    assert.equal(groupPartitionCount(7, 1), 1);
    assert.equal(groupPartitionCount(5, 5), 1);
    for (const [g, n] of [
      [6, 2],
      [6, 3],
      [9, 3],
      [12, 4],
      [16, 4],
    ]) {
      const per = g / n;
      assert.equal(groupPartitionCount(g, n), factorial(g) / (factorial(per) ** n * factorial(n)));
      if (g <= 9) assert.equal(groupPartitionCount(g, n), partitions(g, n).length);
    }
  });
});

describe("packGroupsToNodes", () => {
  test("the documented example: {5, 2} and {4, 3}, bound 7", () => {
    const nodeOfGroup = new Int32Array(4);
    const v = packGroupsToNodes(
      new Float64Array([5, 4, 3, 2]),
      0,
      { numExperts: 4, numGroups: 4, numNodes: 2, gpusPerNode: 1, slotsPerNode: 2 },
      nodeOfGroup,
    );
    assert.equal(v, 7);
    assert.deepEqual(Array.from(nodeOfGroup), [0, 1, 1, 0]);
  });

  test("exact below the partition limit: the brute-force least largest bound, then least sum of squares", () => {
    const rng = new Random(21);
    const ws = new GroupPackingWorkspace();
    for (const [numGroups, numNodes] of [
      [4, 2],
      [6, 2],
      [6, 3],
      [8, 2],
      [8, 4],
    ]) {
      for (let run = 0; run < 15; run++) {
        const { shape, loads } = randomShape(rng, numGroups, numNodes);
        // Read the layer at an offset, as the policies do for layer l.
        const padded = Float64Array.from([7, 7, 7, ...loads]);
        const nodeOfGroup = new Int32Array(numGroups);
        const v = packGroupsToNodes(padded, 3, shape, nodeOfGroup, ws);
        let bestMax = Number.POSITIVE_INFINITY;
        let bestSq = Number.POSITIVE_INFINITY;
        for (const p of partitions(numGroups, numNodes)) {
          const b = p.map((s) => plainBound(loads, shape, s));
          const m = Math.max(...b);
          const sq = b.reduce((s, x) => s + x * x, 0);
          if (m < bestMax || (m === bestMax && sq < bestSq)) {
            bestMax = m;
            bestSq = sq;
          }
        }
        const mine = boundsOf(loads, shape, nodeOfGroup);
        assert.equal(v, bestMax);
        assert.equal(Math.max(...mine), bestMax);
        const sq = mine.reduce((s, x) => s + x * x, 0);
        assert.ok(Math.abs(sq - bestSq) <= 1e-9 * Math.max(1, bestSq), `${sq} vs ${bestSq}`);
        assert.deepEqual(Array.from(ws.nodeBound.subarray(0, numNodes)), mine);
      }
    }
  });

  test("beyond the limit: the swap search's partition is valid, reported truly and no worse than the greedy packing it starts from", () => {
    assert.ok(groupPartitionCount(16, 4) > EXACT_GROUP_PARTITIONS);
    const rng = new Random(22);
    for (let run = 0; run < 10; run++) {
      const { shape, loads } = randomShape(rng, 16, 4);
      const nodeOfGroup = new Int32Array(16);
      const ws = new GroupPackingWorkspace();
      const v = packGroupsToNodes(loads, 0, shape, nodeOfGroup, ws);
      const mine = boundsOf(loads, shape, nodeOfGroup);
      assert.equal(v, Math.max(...mine));
      // The start: the reference's greedy packing of group totals.
      const gs = shape.numExperts / 16;
      const totals = Array.from({ length: 16 }, (_, g) =>
        loads.slice(g * gs, (g + 1) * gs).reduce((s, x) => s + x, 0),
      );
      const pack = new Int32Array(16);
      greedyPacking(totals, 16, 4, pack, new Int32Array(16));
      assert.ok(v <= Math.max(...boundsOf(loads, shape, pack)));
      // It stops at a local optimum: no exchange of two groups between the worst node and
      // another lowers the larger of their bounds.
      const sets: number[][] = [[], [], [], []];
      for (let g = 0; g < 16; g++) sets[nodeOfGroup[g]].push(g);
      const worst = mine.indexOf(v);
      for (let m = 0; m < 4; m++) {
        if (m === worst) continue;
        for (const a of sets[worst]) {
          for (const b of sets[m]) {
            const w2 = sets[worst].map((g) => (g === a ? b : g));
            const m2 = sets[m].map((g) => (g === b ? a : g));
            const after = Math.max(plainBound(loads, shape, w2), plainBound(loads, shape, m2));
            assert.ok(
              after >= v * (1 - 1e-12),
              `run ${run}: exchanging ${a} and ${b} gives ${after} < ${v}`,
            );
          }
        }
      }
    }
  });

  test("one node holds every group; one group per node keeps group g on node g", () => {
    const loads = [9, 1, 4, 4, 2, 6];
    const one = new Int32Array(3).fill(5);
    const shapeOne = { numExperts: 6, numGroups: 3, numNodes: 1, gpusPerNode: 2, slotsPerNode: 8 };
    assert.equal(
      packGroupsToNodes(loads, 0, shapeOne, one),
      plainBound(loads, shapeOne, [0, 1, 2]),
    );
    assert.deepEqual(Array.from(one), [0, 0, 0]);
    const each = new Int32Array(3);
    const shapeEach = { numExperts: 6, numGroups: 3, numNodes: 3, gpusPerNode: 1, slotsPerNode: 3 };
    const ws = new GroupPackingWorkspace();
    const v = packGroupsToNodes(loads, 0, shapeEach, each, ws);
    assert.deepEqual(Array.from(each), [0, 1, 2]);
    const bounds = [0, 1, 2].map((g) => plainBound(loads, shapeEach, [g]));
    assert.deepEqual(Array.from(ws.nodeBound.subarray(0, 3)), bounds);
    assert.equal(v, Math.max(...bounds));
  });
});

describe("packGroupsToNodes: idle experts take slots (regression)", () => {
  // 10 groups of one expert on 2 nodes of 3 GPUs, 6 slots per node: every node holds 5 experts,
  // so the node with the 63 can give it only 2 replicas: no partition gets below 63 / 2. The
  // bound used to skip water-filling because ceil(load / perGpu) gave the idle experts 0 slots,
  // and claimed 21 (the node's load per GPU) with 63 on a node of idle experts.
  const loads = [63, 0, 0, 0, 0, 1, 1, 1, 1, 1];
  const shape = { numExperts: 10, numGroups: 10, numNodes: 2, gpusPerNode: 3, slotsPerNode: 6 };

  test("the node bound counts one slot per idle expert", () => {
    const nodeOfGroup = new Int32Array(10);
    assert.equal(packGroupsToNodes(loads, 0, shape, nodeOfGroup), 31.5);
  });

  test("hierarchyBounds no longer reports the flat 21 as the hierarchy's bound", () => {
    const t = makeTopology(10, 12, 10, 2, 6);
    assert.deepEqual(Array.from(hierarchyBounds(toLoadMatrix([loads]), t).bounds), [31.5]);
  });
});

describe("offNodeShare", () => {
  /** Plainly: per layer and group, the load served off the node serving most of it (lowest index on ties). */
  function plainShare(
    rows: number[][],
    phy2log: number[][],
    E: number,
    groups: number,
    nodes: number,
  ): number {
    const p = placementFromPhy2log(phy2log, E, "phy2log", true);
    const P = phy2log[0].length;
    let total = 0;
    let off = 0;
    rows.forEach((loads, l) => {
      const served = Array.from({ length: groups }, () => new Array<number>(nodes).fill(0));
      phy2log[l].forEach((e, s) => {
        if (e >= 0)
          served[Math.floor(e / (E / groups))][Math.floor(s / (P / nodes))] +=
            loads[e] / p.logcnt[l * E + e];
      });
      for (const perNode of served) {
        const sum = perNode.reduce((a, b) => a + b, 0);
        total += sum;
        off += sum - Math.max(...perNode);
      }
    });
    return total > 0 ? off / total : 0;
  }

  test("equals a plain count over random placements, empty slots included", () => {
    const rng = new Random(23);
    for (let run = 0; run < 200; run++) {
      const nodes = 2 + rng.int(3);
      const groups = nodes * (1 + rng.int(3));
      const E = groups * (1 + rng.int(2));
      const P = nodes * (Math.ceil(E / nodes) + rng.int(3));
      const layers = 1 + rng.int(3);
      const rows = Array.from({ length: layers }, () =>
        Array.from({ length: E }, () => rng.int(4) * 5),
      );
      const phy2log = Array.from({ length: layers }, () => {
        const row = Array.from({ length: P }, (_, s) =>
          s < E ? s : rng.int(4) === 0 ? -1 : rng.int(E),
        );
        for (let s = P - 1; s > 0; s--) {
          const t = rng.int(s + 1);
          [row[s], row[t]] = [row[t], row[s]];
        }
        return row;
      });
      const p = placementFromPhy2log(phy2log, E, "phy2log", true);
      const share = offNodeShare(toLoadMatrix(rows), p, { numGroups: groups, numNodes: nodes });
      const plain = plainShare(rows, phy2log, E, groups, nodes);
      assert.ok(Math.abs(share - plain) <= 1e-12, `${share} vs ${plain}`);
    }
  });

  test("a plan that keeps each group on one node has no off-node load; all-zero loads give 0", () => {
    // 4 groups of 1 expert on 2 nodes of 3 slots, extra replicas at home.
    const p = placementFromPhy2log([[0, 2, 0, 1, 3, 3]], 4);
    assert.equal(offNodeShare(toLoadMatrix([[5, 1, 2, 7]]), p, { numGroups: 4, numNodes: 2 }), 0);
    const moved = placementFromPhy2log([[0, 2, 3, 1, 3, 0]], 4);
    assert.equal(
      offNodeShare(toLoadMatrix([[0, 0, 0, 0]]), moved, { numGroups: 4, numNodes: 2 }),
      0,
    );
    assert.ok(offNodeShare(toLoadMatrix([[5, 1, 2, 7]]), moved, { numGroups: 4, numNodes: 2 }) > 0);
  });
});
