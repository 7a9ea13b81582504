import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbInputError } from "../../src/core/model/errors.js";
import { placementFromPhy2log, toLoadMatrix } from "../../src/index.js";
import { placementReport } from "../../src/pipeline/report.js";
import { evalCase } from "../helpers/small-cases.js";

describe("placementReport", () => {
  const loads = toLoadMatrix(evalCase.loads);
  const placement = placementFromPhy2log(evalCase.phy2log, 4);

  test("the page and the figures it shows", () => {
    const { html, model } = placementReport({ loads, placement, numGpus: 3, title: "T" });
    assert.match(html, /^<!DOCTYPE html>/i);
    assert.match(html, /<h1>T<\/h1>/);
    // Mean / max GPU load per layer, averaged (see test/pipeline/evaluate.test.ts).
    assert.ok(Math.abs(model.after.balancedness - (8 / 9 + 2 / 3) / 2) < 1e-9);
    assert.equal(model.migration, undefined);
  });

  test("from a previous placement: the migration figures and sections", () => {
    const previous = placementFromPhy2log(
      [
        [0, 1, 2, 3, 0, 1],
        [0, 1, 2, 3, 0, 1],
      ],
      4,
    );
    const { html, model } = placementReport({ loads, placement, numGpus: 3, previous });
    assert.ok(model.migration);
    assert.ok(model.migration.slotsChanged > 0);
    assert.ok(html.length > placementReport({ loads, placement, numGpus: 3 }).html.length);
  });

  test("a placement that does not fit the GPUs is refused", () => {
    assert.throws(() => placementReport({ loads, placement, numGpus: 4 }), EplbInputError);
  });
});
