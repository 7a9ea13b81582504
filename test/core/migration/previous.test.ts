// Tests of core/migration/previous.ts: a previous placement checked against the shape it must fit
// and the locality contract of its mode, and every group's home node found.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { GLOBAL, RELAXED, STRICT } from "../../../src/core/migration/options.js";
import {
  findGroupHomes,
  localityError,
  localityViolation,
  toPreviousPlacement,
} from "../../../src/core/migration/previous.js";
import { EplbInputError } from "../../../src/core/model/errors.js";
import { placementFromPhy2log } from "../../../src/core/model/placement.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import { assertRefused } from "../../helpers/refused.js";

describe("toPreviousPlacement: refusals", () => {
  const t = makeTopology(4, 6, 2, 2, 2);
  const cases: [string, unknown, RegExp][] = [
    [
      "wrong layer count",
      [
        [0, 1, 0, 2, 3, 3],
        [0, 1, 0, 2, 3, 3],
      ],
      /previous .* one row per layer of the loads \(1\)/,
    ],
    [
      "wrong slot count",
      [[0, 1, 0, 2, 3]],
      /previous\[0\]\.length \(5\) must equal numReplicas \(6\)/,
    ],
    [
      "expert id out of range",
      [[0, 1, 0, 2, 3, 9]],
      /previous\[0\]\[5\] \(9\) must be an expert id in 0\.\.3/,
    ],
    [
      "negative expert id",
      [[0, 1, 0, 2, 3, -2]],
      /previous\[0\]\[5\] \(-2\) must be an expert id in 0\.\.3 or -1/,
    ],
    [
      "an empty slot on a two-node hierarchy",
      [[0, 1, 0, 2, 3, -1]],
      /previous\[0\]\[5\] \(-1\) is an empty slot: .*needs one node or the global policy/,
    ],
    [
      "an expert without a replica",
      [[0, 1, 0, 1, 3, 3]],
      /previous\[0\] \("expert 2"\) has no replica/,
    ],
    ["a group on two nodes", [[0, 1, 2, 0, 3, 3]], /group 0.* has replicas on nodes 0 and 1/],
    ["not an array", "0,1,2", /previous \("0,1,2"\) must be phy2log/],
  ];
  for (const [name, previous, message] of cases) {
    test(`${name} is an EplbInputError naming it`, () => {
      assert.throws(
        () => toPreviousPlacement(previous as number[][], 1, t),
        (e: unknown) => e instanceof EplbInputError && message.test(e.message),
      );
    });
  }

  test("a typed placement of another expert or layer count is rejected", () => {
    const p = placementFromPhy2log([[0, 1, 0, 2, 3, 4]], 5);
    assert.throws(() => toPreviousPlacement(p, 1, t), /previous\.numExperts \(5\) must equal/);
    const q = placementFromPhy2log([[0, 1, 0, 2, 3, 3]], 4);
    assert.throws(
      () => toPreviousPlacement(q, 2, t),
      /previous\.layers \(1\) must equal the layers of the loads \(2\)/,
    );
  });

  test("relaxed hierarchy accepts off-node replicas but needs a home node per group", () => {
    // Group 0 = experts {0, 1} on node 0 with a spare replica of 0 on node 1.
    assert.equal(toPreviousPlacement([[0, 1, 2, 0, 3, 2]], 1, t, true).logcnt[0], 2);
    assert.throws(
      () => toPreviousPlacement([[0, 2, 2, 1, 3, 3]], 1, t, true),
      /group 0.* has no node holding a replica of each of its experts/,
    );
  });

  test("refusals are one line naming the parameter (renamed by the caller) and the rule", () => {
    assertRefused(
      () => toPreviousPlacement([[0, 1, 0, 2, 3, 9]], 1, t, false, "from"),
      EplbInputError,
      "from[0][5] (9) must be an expert id in 0..3 or -1 (an empty slot)",
    );
    assertRefused(
      () => toPreviousPlacement([[0, 1, 0, 2, 3]], 1, t, false, "from"),
      EplbInputError,
      "from[0].length (5) must equal numReplicas (6)",
      "from[0].length",
    );
    assertRefused(
      () => toPreviousPlacement([[0, 1, 2, 0, 3, 3]], 1, t),
      EplbInputError,
      'previous[0] ("group 0") has replicas on nodes 0 and 1, but with numGroups % numNodes == 0 every replica of a group must stay on one node',
      "previous[0]",
    );
    assertRefused(
      () => toPreviousPlacement([[0, 1, 0, 2, 3, -1]], 1, t),
      EplbInputError,
      "previous[0][5] (-1) is an empty slot: rebalancing from a placement with empty slots needs one node or the global policy (numGroups % numNodes != 0)",
      "previous[0][5]",
    );
    assertRefused(
      () => toPreviousPlacement([[0, 1, 0, 2, 3, 3], null as never], 2, t),
      EplbInputError,
      "previous[1] (null) must be an array of expert ids",
      "previous[1]",
    );
    const q = placementFromPhy2log([[0, 1, 2, 3]], 4);
    assertRefused(
      () => toPreviousPlacement(q, 1, t),
      EplbInputError,
      "previous.numReplicas (4) must equal numReplicas (6)",
      "previous.numReplicas",
    );
  });

  test("the layer of a broken contract is the one reported (layer 1 here)", () => {
    assertRefused(
      () =>
        toPreviousPlacement(
          [
            [0, 1, 0, 2, 3, 3],
            [0, 1, 2, 0, 3, 3],
          ],
          2,
          t,
        ),
      EplbInputError,
      /^previous\[1\] \("group 0"\) has replicas on nodes 0 and 1/,
      "previous[1]",
    );
  });
});

describe("toPreviousPlacement: accepted placements", () => {
  test("nested rows and a typed placement give the same placement; ranks follow slot order", () => {
    const t = makeTopology(4, 6, 2, 2, 2);
    const rows = [
      [0, 1, 0, 2, 3, 3],
      [1, 0, 1, 3, 2, 2],
    ];
    const p = toPreviousPlacement(rows, 2, t);
    assert.deepEqual([...p.phy2log], rows.flat());
    assert.deepEqual([...p.logcnt], [2, 1, 1, 2, 1, 2, 2, 1]);
    assert.deepEqual([...p.replicaRank], [0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0, 1]);
    const typed = toPreviousPlacement(placementFromPhy2log(rows, 4), 2, t);
    assert.deepEqual(typed, p);
  });

  test("global topologies and one node accept any node spread, and one node accepts empty slots", () => {
    // 3 groups on 2 nodes: global, so expert 0 may sit on both nodes.
    const global = makeTopology(6, 8, 3, 2, 4);
    assert.equal(toPreviousPlacement([[0, 1, 2, 3, 0, 4, 5, 5]], 1, global).logcnt[0], 2);
    const oneNode = makeTopology(3, 4, 1, 1, 2);
    const p = toPreviousPlacement([[0, 1, -1, 2]], 1, oneNode);
    assert.equal(p.phy2log[2], -1);
    assert.deepEqual([...p.logcnt], [1, 1, 1]);
  });
});

describe("findGroupHomes", () => {
  // 4 nodes x 1 GPU x 4 slots, groups {0, 1}, {2, 3}, {4, 5}, {6, 7}.
  const t = makeTopology(8, 16, 4, 4, 4);
  const none = new Int32Array(0);

  test("strict: each group's node; the first group found on a second node is returned", () => {
    const homes = new Int32Array(4);
    const row = [6, 7, 7, 6, 0, 1, 1, 0, 2, 3, 2, 2, 4, 5, 5, 4];
    assert.equal(findGroupHomes(row, 0, t, STRICT, homes, none), -1);
    assert.deepEqual([...homes], [1, 2, 3, 0]);
    // Group 2 first on node 1 (slot 6), then on node 2 (slot 8); group 1 breaks later (slot 9).
    const bad = [0, 1, 0, 1, 2, 3, 4, 5, 5, 2, 6, 7, 6, 7, 4, 3];
    assert.equal(findGroupHomes(bad, 0, t, STRICT, homes, none), 2);
    // The offset selects the layer.
    assert.equal(findGroupHomes([...bad, ...row], 16, t, STRICT, homes, none), -1);
  });

  test("relaxed: the covering node with most of the group's replicas, the lowest on a tie", () => {
    const homes = new Int32Array(4);
    const nodeHas = new Int32Array(8 * 4);
    // Group 0 covered on node 0 (2 replicas) and node 1 (3): node 1. Group 1 covered on nodes 2
    // and 3 (2 each): node 2. Group 2 only on node 0, group 3 only on node 2.
    const row = [0, 1, 4, 5, 0, 1, 1, 6, 2, 3, 6, 7, 2, 3, 4, 4];
    assert.equal(findGroupHomes(row, 0, t, RELAXED, homes, nodeHas), -1);
    assert.deepEqual([...homes], [1, 2, 0, 2]);
  });

  test("relaxed: empty slots are ignored; a group no node covers is returned", () => {
    const homes = new Int32Array(4);
    const nodeHas = new Int32Array(8 * 4);
    const holes = [0, 1, 4, 5, 0, 1, -1, 6, 2, 3, 6, 7, 2, 3, 4, -1];
    assert.equal(findGroupHomes(holes, 0, t, RELAXED, homes, nodeHas), -1);
    assert.deepEqual([...homes], [0, 2, 0, 2]);
    // Expert 0 only on node 0 and expert 1 only on node 1: group 0 has no home.
    const split = [0, 2, 4, 6, 1, 3, 5, 7, 2, 3, 4, 5, 6, 7, 2, 3];
    assert.equal(findGroupHomes(split, 0, t, RELAXED, homes, nodeHas), 0);
  });

  test("property: strict homes agree with a plain scan of the nodes each group uses", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 7 }), { minLength: 16, maxLength: 16 }),
        (row) => {
          const homes = new Int32Array(4);
          const got = findGroupHomes(row, 0, t, STRICT, homes, none);
          const nodes = [0, 1, 2, 3].map(() => new Set<number>());
          let firstBad = -1;
          for (let s = 0; s < 16; s++) {
            const g = Math.floor(row[s] / 2);
            nodes[g].add(Math.floor(s / 4));
            if (nodes[g].size > 1 && firstBad < 0) firstBad = g;
          }
          assert.equal(got, firstBad);
          if (got < 0) {
            for (let g = 0; g < 4; g++)
              assert.equal(homes[g], nodes[g].size ? [...nodes[g]][0] : -1);
          }
        },
      ),
      { seed: 15, numRuns: 300 },
    );
  });
});

describe("localityViolation and localityError", () => {
  const t = makeTopology(4, 4, 2, 2, 2);

  test("the documented example; global topologies never violate", () => {
    assert.equal(localityViolation(placementFromPhy2log([[1, 0, 3, 2]], 4), t), null);
    assert.deepEqual(localityViolation(placementFromPhy2log([[2, 0, 3, 1]], 4), t), {
      layer: 0,
      group: 1,
    });
    const global = makeTopology(6, 6, 3, 2, 2);
    assert.equal(localityViolation(placementFromPhy2log([[0, 5, 1, 2, 3, 4]], 6), global), null);
  });

  test("the first bad layer is reported, and relaxed accepts what strict refuses", () => {
    const t4 = makeTopology(4, 8, 2, 2, 2);
    // Layer 1: expert 0 has a spare replica on node 1, and node 0 still holds all of group 0.
    const p = placementFromPhy2log(
      [
        [0, 1, 0, 1, 2, 3, 2, 3],
        [0, 1, 0, 1, 2, 3, 0, 3],
      ],
      4,
    );
    assert.deepEqual(localityViolation(p, t4), { layer: 1, group: 0 });
    assert.equal(localityViolation(p, t4, true), null);
  });

  test("messages: strict names the two nodes, relaxed the missing cover", () => {
    const row = [0, 2, 1, 3];
    assert.equal(
      localityError(row, 0, t, STRICT, 3, 0, "p").message,
      'p[3] ("group 0") has replicas on nodes 0 and 1, but with numGroups % numNodes == 0 every replica of a group must stay on one node',
    );
    assert.equal(
      localityError(row, 0, t, RELAXED, 0, 1, "p").message,
      'p[0] ("group 1") has no node holding a replica of each of its experts, which the relaxed hierarchy requires',
    );
    assert.notEqual(GLOBAL, STRICT);
  });
});
