// Tests of core/migration/options.ts: migration options checked and resolved for a topology, and
// the locality mode a topology and the relaxed flag settle.
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  DEFAULT_MIN_GAIN,
  DEFAULT_MOVE_BUDGET,
  DEFAULT_SLOT_GAIN,
  DEFAULT_TOLERANCE,
  GLOBAL,
  localityMode,
  RELAXED,
  resolveMigrationSettings,
  STRICT,
} from "../../../src/core/migration/options.js";
import { EplbInputError } from "../../../src/core/model/errors.js";
import { makeTopology } from "../../../src/core/model/topology.js";
import { assertRefused } from "../../helpers/refused.js";

describe("resolveMigrationSettings", () => {
  const settingCases: [string, object, RegExp][] = [
    ["negative budget", { moveBudget: -1 }, /moveBudget \(-1\)/],
    ["budget 1.5", { moveBudget: 1.5 }, /moveBudget \(1.5\)/],
    ["NaN budget", { moveBudget: Number.NaN }, /moveBudget \(NaN\)/],
    ["min gain 1", { minGain: 1 }, /minGain \(1\) must be a number in \[0, 1\)/],
    ["negative tolerance", { tolerance: -0.1 }, /tolerance \(-0.1\)/],
    [
      "negative slot gain",
      { slotGain: -1e-5 },
      /slotGain \(-0.00001\) must be a finite number >= 0/,
    ],
  ];
  for (const [name, options, message] of settingCases) {
    test(`${name} is an EplbInputError`, () => {
      assert.throws(
        () => resolveMigrationSettings(options, 16),
        (e: unknown) => e instanceof EplbInputError && message.test(e.message),
      );
    });
  }

  test("budgets resolve to slots per layer: integers as given, fractions of the slots", () => {
    assert.equal(resolveMigrationSettings({ moveBudget: 0.1 }, 288).moveBudget, 28);
    assert.equal(resolveMigrationSettings({ moveBudget: 12 }, 288).moveBudget, 12);
    assert.equal(resolveMigrationSettings({ moveBudget: 1000 }, 288).moveBudget, 288);
    assert.equal(resolveMigrationSettings({ moveBudget: Infinity }, 288).moveBudget, 288);
  });

  test("no options: the documented defaults, the budget as a share of the slots rounded down", () => {
    assert.deepEqual(resolveMigrationSettings({}, 16), {
      moveBudget: Math.floor(DEFAULT_MOVE_BUDGET * 16),
      minGain: DEFAULT_MIN_GAIN,
      tolerance: DEFAULT_TOLERANCE,
      slotGain: DEFAULT_SLOT_GAIN,
      relaxedHierarchy: false,
    });
    assert.equal(resolveMigrationSettings({}, 16).moveBudget, 6);
  });

  test("integer budgets are slots (1 is one slot, not all of them); 0 is allowed; fractions floor", () => {
    assert.equal(resolveMigrationSettings({ moveBudget: 1 }, 10).moveBudget, 1);
    assert.equal(resolveMigrationSettings({ moveBudget: 0 }, 10).moveBudget, 0);
    assert.equal(resolveMigrationSettings({ moveBudget: 0.99 }, 10).moveBudget, 9);
    assert.equal(resolveMigrationSettings({ moveBudget: 0.05 }, 10).moveBudget, 0);
    assert.equal(resolveMigrationSettings({ moveBudget: 10 }, 10).moveBudget, 10);
    assert.equal(resolveMigrationSettings({ moveBudget: 11 }, 10).moveBudget, 10);
  });

  test("the bounds of the other settings: minGain 0 and tolerance 0 are accepted, as given", () => {
    const s = resolveMigrationSettings(
      { minGain: 0, tolerance: 0, slotGain: 0, relaxedHierarchy: true },
      8,
    );
    assert.deepEqual([s.minGain, s.tolerance, s.slotGain, s.relaxedHierarchy], [0, 0, 0, true]);
    assert.equal(resolveMigrationSettings({ minGain: 0.999 }, 8).minGain, 0.999);
  });

  test("refusals name the parameter, the value and the rule", () => {
    const budgetRule =
      "must be an integer >= 0 (slots per layer), a fraction in (0, 1) of numReplicas, or Infinity";
    assertRefused(
      () => resolveMigrationSettings({ moveBudget: 2.5 }, 8),
      EplbInputError,
      `moveBudget (2.5) ${budgetRule}`,
      "moveBudget",
    );
    assertRefused(
      () => resolveMigrationSettings({ moveBudget: "3" as unknown as number }, 8),
      EplbInputError,
      `moveBudget ("3") ${budgetRule}`,
      "moveBudget",
    );
    assertRefused(
      () => resolveMigrationSettings({ moveBudget: -Infinity }, 8),
      EplbInputError,
      `moveBudget (-Infinity) ${budgetRule}`,
      "moveBudget",
    );
    assertRefused(
      () => resolveMigrationSettings({ minGain: -0.1 }, 8),
      EplbInputError,
      "minGain (-0.1) must be a number in [0, 1)",
      "minGain",
    );
    assertRefused(
      () => resolveMigrationSettings({ tolerance: Infinity }, 8),
      EplbInputError,
      "tolerance (Infinity) must be a finite number >= 0",
      "tolerance",
    );
    assertRefused(
      () => resolveMigrationSettings({ slotGain: Number.NaN }, 8),
      EplbInputError,
      "slotGain (NaN) must be a finite number >= 0",
      "slotGain",
    );
    assertRefused(
      () => resolveMigrationSettings({ relaxedHierarchy: 1 as unknown as boolean }, 8),
      EplbInputError,
      "relaxedHierarchy (1) must be true or false",
      "relaxedHierarchy",
    );
  });
});

describe("localityMode", () => {
  test("global when the groups do not divide by the nodes, whatever the relaxed flag", () => {
    const t = makeTopology(6, 8, 3, 2, 4);
    assert.equal(localityMode(t, false), GLOBAL);
    assert.equal(localityMode(t, true), GLOBAL);
  });

  test("one node counts as hierarchical (every group trivially on its node)", () => {
    assert.equal(localityMode(makeTopology(4, 8, 2, 1, 4), false), STRICT);
  });

  test("hierarchical topologies: strict by default, relaxed on request", () => {
    const t = makeTopology(4, 8, 2, 2, 4);
    assert.equal(localityMode(t, false), STRICT);
    assert.equal(localityMode(t, true), RELAXED);
    assert.equal(new Set([GLOBAL, STRICT, RELAXED]).size, 3);
  });
});
