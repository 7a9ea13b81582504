import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  EplbInputError,
  placementFromPhy2log,
  rebalanceExperts,
  registerPolicy,
  toReferencePlacement,
} from "../../src/index.js";
import { assertRefused } from "../helpers/refused.js";

// The nested arrays are built on first read; these pin that a user cannot tell.
describe("rebalanceExperts result: the reference-shaped arrays behave as plain data", () => {
  const loads = [
    [10, 40, 20, 30],
    [5, 5, 90, 0],
  ];
  const expected = toReferencePlacement(
    rebalanceExperts(loads, 6, 1, 1, 2, { policy: "deepseek" }).placement,
  );
  test("deep equality, spreading and JSON see phy2log, log2phy and logcnt with their values", () => {
    const r = rebalanceExperts(loads, 6, 1, 1, 2, { policy: "deepseek" });
    assert.deepEqual(Object.keys(r), [
      "phy2log",
      "log2phy",
      "logcnt",
      "placement",
      "topology",
      "policy",
    ]);
    assert.deepEqual({ ...r }.log2phy, expected.log2phy);
    const json = JSON.parse(JSON.stringify(r));
    assert.deepEqual(json.phy2log, expected.phy2log);
    assert.deepEqual(json.log2phy, expected.log2phy);
    assert.deepEqual(json.logcnt, expected.logcnt);
    assert.deepEqual(structuredClone(r).logcnt, expected.logcnt);
    const { phy2log, log2phy, logcnt } = rebalanceExperts(loads, 6, 1, 1, 2, {
      policy: "deepseek",
    });
    assert.deepStrictEqual({ phy2log, log2phy, logcnt }, expected);
    assert.deepEqual(r.phy2log, [[1, 1, 0, 2, 3, 3], expected.phy2log[1]]);
  });
  test("each array is built once: edits persist and assignment replaces it", () => {
    const r = rebalanceExperts(loads, 6, 1, 1, 2, { policy: "deepseek" });
    assert.equal(r.log2phy, r.log2phy);
    r.logcnt[0][0] = 99;
    assert.equal(r.logcnt[0][0], 99);
    r.phy2log = [[0]];
    assert.deepEqual(r.phy2log, [[0]]);
  });
  test("editing the typed placement after the call does not change the nested arrays", () => {
    const r = rebalanceExperts(loads, 6, 1, 1, 2, { policy: "deepseek" });
    r.placement.phy2log.fill(0);
    r.placement.logcnt.fill(0);
    assert.deepEqual(r.phy2log, expected.phy2log);
    assert.deepEqual(r.logcnt, expected.logcnt);
    assert.deepEqual(r.log2phy, expected.log2phy);
  });
  test("editing the placement read after some nested arrays, or before any, leaves the others as planned", () => {
    const early = rebalanceExperts(loads, 6, 1, 1, 2, { policy: "deepseek" });
    early.placement.phy2log.fill(0);
    early.placement.replicaRank.fill(0);
    assert.deepEqual(early.log2phy, expected.log2phy);
    const late = rebalanceExperts(loads, 6, 1, 1, 2, { policy: "deepseek" });
    assert.deepEqual(late.phy2log, expected.phy2log);
    const placement = late.placement;
    placement.phy2log.fill(0);
    placement.replicaRank.fill(0);
    placement.logcnt.fill(0);
    assert.deepEqual(late.log2phy, expected.log2phy);
    assert.deepEqual(late.logcnt, expected.logcnt);
    assert.equal(late.placement, placement);
  });
  test("assigning placement replaces it and leaves the nested arrays as planned", () => {
    const r = rebalanceExperts(loads, 6, 1, 1, 2, { policy: "deepseek" });
    const other = placementFromPhy2log([[0, 0, 1, 1, 2, 3]], 4);
    r.placement = other;
    assert.equal(r.placement, other);
    assert.deepEqual(r.phy2log, expected.phy2log);
    assert.deepEqual({ ...r }.placement, other);
  });
  test("a registered policy that keeps its plan and edits it later cannot change the nested arrays", () => {
    const kept = placementFromPhy2log([[1, 1, 0, 2, 3, 3]], 4);
    registerPolicy({
      name: "keeps-its-plan",
      description: "returns a placement it still holds",
      plan: () => kept,
    });
    const r = rebalanceExperts([[10, 40, 20, 30]], 6, 1, 1, 2, { policy: "keeps-its-plan" });
    kept.phy2log.fill(0);
    kept.logcnt.fill(0);
    assert.deepEqual(r.phy2log, [[1, 1, 0, 2, 3, 3]]);
    assert.deepEqual(r.logcnt, [[1, 2, 1, 2]]);
  });
  test("a rebalance from a previous placement has the same lazy arrays plus its transfers", () => {
    const previous = placementFromPhy2log(
      [
        [0, 1, 2, 3, 0, 1],
        [0, 1, 2, 3, 2, 2],
      ],
      4,
    );
    const r = rebalanceExperts(loads, 6, 1, 1, 2, { previous });
    assert.deepEqual(r.phy2log, toReferencePlacement(r.placement).phy2log);
    assert.deepEqual(
      JSON.parse(JSON.stringify(r)).log2phy,
      toReferencePlacement(r.placement).log2phy,
    );
    assert.ok(r.transfers !== undefined && r.migration !== undefined);
  });
});

describe("rebalanceExperts: a -0 load is a zero load", () => {
  test("the deepseek policy replicates the heaviest expert, not the one with load -0 (regression)", () => {
    const plain = rebalanceExperts([[0, 1, 2, 3]], 5, 1, 1, 1, { policy: "deepseek" });
    const signed = rebalanceExperts([[-0, 1, 2, 3]], 5, 1, 1, 1, { policy: "deepseek" });
    assert.deepEqual(signed.phy2log, plain.phy2log);
    assert.deepEqual(signed.logcnt, [[1, 1, 1, 2]]);
  });
});

describe("rebalanceExperts: the drop-in contract", () => {
  test("the documented example: phy2log, log2phy by replica rank padded with -1, logcnt, policy and topology", () => {
    const weight = [[10, 40, 20, 30]];
    const r = rebalanceExperts(weight, 6, 1, 1, 2);
    assert.deepEqual(r.phy2log, [[1, 1, 0, 2, 3, 3]]);
    assert.deepEqual(r.log2phy, [
      [
        [2, -1],
        [0, 1],
        [3, -1],
        [4, 5],
      ],
    ]);
    assert.deepEqual(r.logcnt, [[1, 2, 1, 2]]);
    assert.equal(r.policy, "balanced");
    assert.deepEqual(
      [r.topology.numExperts, r.topology.numReplicas, r.topology.numGpus, r.topology.slotsPerGpu],
      [4, 6, 2, 3],
    );
    assert.deepEqual(weight, [[10, 40, 20, 30]]);
    assert.equal(r.transfers, undefined);
    assert.equal(r.migration, undefined);
    assert.equal(rebalanceExperts(weight, 6, 1, 1, 2, { policy: "deepseek" }).policy, "deepseek");
  });

  test("rebalancing from the plan itself changes no slot and transfers nothing", () => {
    const first = rebalanceExperts([[10, 40, 20, 30]], 6, 1, 1, 2);
    const again = rebalanceExperts([[10, 40, 20, 30]], 6, 1, 1, 2, { previous: first.phy2log });
    assert.deepEqual(again.phy2log, first.phy2log);
    assert.equal(again.migration?.slotsChanged, 0);
    assert.equal(again.transfers?.count, 0);
  });

  test("an unknown policy is refused naming the known ones", () => {
    // Policies registered by other tests in this process may follow the built-in ones.
    assertRefused(
      () => rebalanceExperts([[1, 2]], 2, 1, 1, 2, { policy: "nope" }),
      EplbInputError,
      /^policy \("nope"\) must be one of: balanced, deepseek\b/,
      "policy",
    );
  });
});
