// The migration returns exactly what it returned before its speed-up (issue 15): placements,
// layer outcomes, metrics and transfers of seeded cases, recorded in
// test/fixtures/migration/differential.json by test/helpers/migration-cases.ts.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import {
  type CaseRecord,
  differentialCases,
  differentialFixture,
} from "../../helpers/migration-cases.js";

describe("migration differential", () => {
  test("every seeded case returns the recorded placement, outcomes and metrics", () => {
    const recorded = JSON.parse(readFileSync(differentialFixture, "utf8")) as CaseRecord[];
    const now = differentialCases();
    assert.equal(now.length, recorded.length);
    assert.ok(now.some((c) => c.slotsChanged > 0));
    for (let i = 0; i < now.length; i++) assert.deepEqual(now[i], recorded[i], now[i].name);
  });
});
