import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  createPlacement,
  maxReplicaCount,
  placementFromPhy2log,
  placementViolation,
  referenceLog2phy,
  referenceRows,
  toReferencePlacement,
} from "../../../src/core/model/placement.js";
import { EplbInputError } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";

describe("createPlacement", () => {
  test("zeroed flat arrays of the shape given", () => {
    const p = createPlacement(2, 6, 4);
    assert.deepEqual(
      [
        p.layers,
        p.numReplicas,
        p.numExperts,
        p.phy2log.length,
        p.replicaRank.length,
        p.logcnt.length,
      ],
      [2, 6, 4, 12, 12, 8],
    );
    assert.ok(p.phy2log.every((x) => x === 0));
  });
});

describe("placementFromPhy2log", () => {
  test("ranks each expert's slots in slot order and counts them, layer by layer", () => {
    const p = placementFromPhy2log(
      [
        [0, 1, 0, 2, 0],
        [2, 2, 1, 0, 1],
      ],
      3,
    );
    assert.deepEqual(Array.from(p.replicaRank), [0, 0, 1, 0, 2, 0, 1, 0, 0, 1]);
    assert.deepEqual(Array.from(p.logcnt), [3, 1, 1, 1, 2, 2]);
    assert.equal(placementViolation(p), null);
  });

  test("with allowEmpty, -1 is an empty slot of rank -1 that counts for no expert", () => {
    const p = placementFromPhy2log([[0, -1, 1]], 2, "phy2log", true);
    assert.deepEqual(Array.from(p.phy2log), [0, -1, 1]);
    assert.deepEqual(Array.from(p.replicaRank), [0, -1, 0]);
    assert.deepEqual(Array.from(p.logcnt), [1, 1]);
    assert.equal(placementViolation(p), null);
  });

  test("refuses bad rows, naming the parameter given, the value and the rule", () => {
    assertRefused(
      () => placementFromPhy2log([], 2),
      EplbInputError,
      "phy2log (array of length 0) must have at least one layer",
      "phy2log",
    );
    assertRefused(
      () => placementFromPhy2log([[]], 2, "weights"),
      EplbInputError,
      /^weights\[0\] \(.*\) must have at least one slot$/,
      "weights[0]",
    );
    assertRefused(
      () =>
        placementFromPhy2log(
          [
            [0, 1],
            [0, 1, 1],
          ],
          2,
        ),
      EplbInputError,
      "phy2log[1].length (3) must equal 2 like phy2log[0]",
      "phy2log[1].length",
    );
    assertRefused(
      () => placementFromPhy2log([[0, 2]], 2),
      EplbInputError,
      "phy2log[0][1] (2) must be an expert id in 0..1",
      "phy2log[0][1]",
    );
    assertRefused(
      () => placementFromPhy2log([[0, 1.5]], 2),
      EplbInputError,
      "phy2log[0][1] (1.5) must be an expert id in 0..1",
      "phy2log[0][1]",
    );
    // -1 is a bad id unless empty slots are allowed; other negatives always are.
    assertRefused(
      () => placementFromPhy2log([[0, -1, 1]], 2),
      EplbInputError,
      "phy2log[0][1] (-1) must be an expert id in 0..1",
      "phy2log[0][1]",
    );
    assertRefused(
      () => placementFromPhy2log([[0, -2, 1]], 2, "phy2log", true),
      EplbInputError,
      "phy2log[0][1] (-2) must be an expert id in 0..1 or -1 (an empty slot)",
      "phy2log[0][1]",
    );
    assertRefused(
      () =>
        placementFromPhy2log(
          [
            [0, 1],
            [1, 1],
          ],
          2,
        ),
      EplbInputError,
      'phy2log[1] ("expert 0") has no replica: every expert needs at least one slot',
      "phy2log[1]",
    );
  });
});

describe("the reference-shaped arrays", () => {
  const p = placementFromPhy2log(
    [
      [0, 1, 0, 2],
      [2, 1, 0, 1],
    ],
    3,
  );

  test("maxReplicaCount is the largest count over every layer", () => {
    assert.equal(maxReplicaCount(p), 2);
    assert.equal(maxReplicaCount(placementFromPhy2log([[0, 1]], 2)), 1);
  });

  test("log2phy lists each expert's slots by rank, padded with -1 to the largest count", () => {
    assert.deepEqual(referenceLog2phy(p), [
      [
        [0, 2],
        [1, -1],
        [3, -1],
      ],
      [
        [2, -1],
        [1, 3],
        [0, -1],
      ],
    ]);
    const empty = placementFromPhy2log([[1, -1, 0]], 2, "phy2log", true);
    assert.deepEqual(referenceLog2phy(empty), [[[2], [0]]]);
  });

  test("referenceRows splits a flat array into rows; toReferencePlacement gives all three", () => {
    assert.deepEqual(referenceRows(Int32Array.from([1, 2, 3, 4, 5, 6]), 2, 3), [
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const ref = toReferencePlacement(p);
    assert.deepEqual(ref.phy2log, [
      [0, 1, 0, 2],
      [2, 1, 0, 1],
    ]);
    assert.deepEqual(ref.logcnt, [
      [2, 1, 1],
      [1, 2, 1],
    ]);
    assert.deepEqual(ref.log2phy, referenceLog2phy(p));
  });
});

describe("placementViolation", () => {
  const good = () => placementFromPhy2log([[0, 1, 0, 2]], 3);

  test("null for a consistent placement; each inconsistency in one line", () => {
    assert.equal(placementViolation(good()), null);
    const cases: [(p: ReturnType<typeof good>) => void, string][] = [
      [(p) => (p.phy2log[1] = 3), "layer 0 slot 1: expert 3 out of range"],
      [(p) => (p.phy2log[1] = -2), "layer 0 slot 1: expert -2 out of range"],
      [
        (p) => {
          p.phy2log[3] = 1;
          p.logcnt[1] = 2;
        },
        "layer 0: expert 2 has no replica",
      ],
      [(p) => (p.logcnt[0] = 3), "layer 0: expert 0 has 2 slots but logcnt 3"],
      [(p) => (p.replicaRank[2] = 0), "layer 0: expert 0 has rank 0 twice"],
      [(p) => (p.replicaRank[2] = 2), "layer 0 slot 2: rank 2 out of range for expert 0"],
      [(p) => (p.replicaRank[2] = -1), "layer 0 slot 2: rank -1 out of range for expert 0"],
    ];
    for (const [edit, message] of cases) {
      const p = good();
      edit(p);
      assert.equal(placementViolation(p), message);
    }
  });

  test("an empty slot must have rank -1", () => {
    const p = placementFromPhy2log([[0, -1, 1]], 2, "phy2log", true);
    p.replicaRank[1] = 0;
    assert.equal(placementViolation(p), "layer 0 slot 1: empty slot with rank 0 (must be -1)");
  });

  test("checks every layer, not only the first", () => {
    const p = placementFromPhy2log(
      [
        [0, 1],
        [1, 0],
      ],
      2,
    );
    p.replicaRank[3] = 1;
    assert.equal(placementViolation(p), "layer 1 slot 1: rank 1 out of range for expert 0");
  });
});
