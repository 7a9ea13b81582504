import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EplbInputError } from "../../src/core/model/errors.js";
import { expertColor, MOVED_COLOR } from "../../src/report/colors.js";
import { svgPlacementGrid } from "../../src/report/placement-grid.js";
import { assertRefused } from "../helpers/refused.js";
import { assertSane, count, group } from "../helpers/svg.js";

/** `[fill, tooltip, class]` of every cell, in drawing order. */
function cellsOf(svg: string): Array<[string, string, string]> {
  return [
    ...group(svg, "cells").matchAll(
      /<rect( class="([^"]*)")?[^>]* fill="([^"]+)"><title>([^<]*)<\/title>/g,
    ),
  ].map((m) => [m[3], m[4], m[2] ?? ""]);
}

describe("svgPlacementGrid", () => {
  it("draws one cell per slot, labels them with expert ids and outlines duplicates", () => {
    // GPU 0 holds expert 0 twice.
    const svg = svgPlacementGrid(5, [0, 0, 1, 2], {
      numExperts: 3,
      numGpus: 2,
      logcnt: [2, 1, 1],
      expertLoads: [10, 3, 4],
    });
    assertSane(svg);
    assert.equal(count(group(svg, "cells"), "<rect"), 4);
    assert.equal(count(group(svg, "cell-labels"), "<text"), 4);
    assert.equal(count(svg, 'class="dup"'), 2);
    assert.match(svg, /data-duplicates="2"/);
    assert.match(svg, /expert 0, 2 replicas, load 10 \(5 per replica\); another replica/);
    assert.match(svg, /font-weight="700">0</);
  });

  it("separates nodes into blocks and wraps many nodes onto rows within the width", () => {
    const G = 320;
    const slots = Array.from({ length: G }, (_, s) => s % 256);
    const svg = svgPlacementGrid(0, slots, {
      numExperts: 256,
      numGpus: G,
      numNodes: 40,
      numGroups: 8,
      width: 1120,
    });
    assertSane(svg);
    assert.equal(count(svg, 'class="node"'), 40);
    assert.equal(count(group(svg, "cells"), "<rect"), G);
    assert.match(svg, /data-labels="320"/, "3-digit ids still fit");
    for (const m of svg.matchAll(/<rect[^>]* x="([\d.]+)"[^>]* width="([\d.]+)"/g)) {
      assert.ok(Number(m[1]) + Number(m[2]) <= 1120, "no cell beyond the width");
    }
  });

  it("drops labels when cells are too small and keeps tooltips", () => {
    const slots = Array.from({ length: 300 }, (_, s) => s % 150);
    const svg = svgPlacementGrid(0, slots, { numExperts: 150, numGpus: 1 });
    assertSane(svg);
    assert.match(svg, /data-labels="0"/);
    assert.doesNotMatch(svg, /cell-labels/);
    assert.equal(count(svg, "<title>GPU 0, slot"), 300);
  });

  it("rejects a GPU count that does not divide the slots", () => {
    assert.throws(
      () => svgPlacementGrid(0, [0, 1, 2], { numExperts: 3, numGpus: 2 }),
      EplbInputError,
    );
  });

  it("draws GPU by GPU, slot by slot, each cell in its expert's colour", () => {
    const slots = [3, 1, 0, 2, 1, 3];
    const svg = svgPlacementGrid(0, slots, { numExperts: 4, numGpus: 3, numGroups: 2 });
    const cells = cellsOf(svg);
    assert.equal(cells.length, 6);
    for (let s = 0; s < 6; s++) {
      const g = Math.floor(s / 2);
      assert.equal(cells[s][0], expertColor(slots[s], 4, 2), `slot ${s}`);
      assert.equal(cells[s][1], `GPU ${g}, slot ${s % 2} (physical slot ${s}): expert ${slots[s]}`);
    }
    assert.match(svg, /group 0: experts 0-1/);
    assert.match(svg, /group 1: experts 2-3/);
  });

  it("outlines a duplicate on one GPU only, not the same expert on two GPUs", () => {
    const svg = svgPlacementGrid(0, [0, 1, 1, 0, 2, 2], { numExperts: 3, numGpus: 3 });
    const classes = cellsOf(svg).map(([, , c]) => c);
    assert.deepEqual(classes, ["", "", "", "", "dup", "dup"]);
    assert.match(svg, /data-duplicates="2"/);
  });

  it("says which node a GPU is on when there are several", () => {
    const svg = svgPlacementGrid(0, [0, 1, 2, 3], { numExperts: 4, numGpus: 4, numNodes: 2 });
    const tips = cellsOf(svg).map(([, t]) => t);
    assert.equal(tips[3], "GPU 3 (node 1), slot 0 (physical slot 3): expert 3");
    assert.equal(count(svg, 'class="node"'), 2);
  });

  it("counts and outlines the slots changed since previousSlots", () => {
    const svg = svgPlacementGrid(0, [0, 1, 2, 3], {
      numExperts: 4,
      numGpus: 2,
      previousSlots: [3, 2, 1, 3],
    });
    assertSane(svg);
    assert.match(svg, /data-moved="3"/);
    assert.deepEqual(
      cellsOf(svg).map(([, , c]) => c),
      ["moved", "moved", "moved", ""],
    );
    assert.match(svg, /expert 1; new here \(held expert 2 before\)/);
    assert.match(svg, new RegExp(MOVED_COLOR));
    assert.doesNotMatch(svgPlacementGrid(0, [0, 1], { numExperts: 2, numGpus: 1 }), /data-moved/);
  });

  it("refuses bad shapes naming the parameter, the value and the rule", () => {
    assertRefused(
      () => svgPlacementGrid(0, [0, 1, 2], { numExperts: 3, numGpus: 2 }),
      EplbInputError,
      /^numGpus \(2\) must divide the number of slots \(3\)/,
      "numGpus",
    );
    assertRefused(
      () => svgPlacementGrid(0, [0, 1, 2, 3], { numExperts: 4, numGpus: 4, numNodes: 3 }),
      EplbInputError,
      /^numNodes \(3\) must divide numGpus \(4\)/,
      "numNodes",
    );
    assertRefused(
      () => svgPlacementGrid(0, [0, 1], { numExperts: 2, numGpus: 1, previousSlots: [0] }),
      EplbInputError,
      /^previousSlots\.length \(1\) must equal the layer's slots \(2\)/,
      "previousSlots.length",
    );
    assert.throws(() => svgPlacementGrid(0, [0, 1], { numExperts: 2, numGpus: 0 }), EplbInputError);
  });

  it("escapes the reason it was picked for", () => {
    const svg = svgPlacementGrid(0, [0, 1], { numExperts: 2, numGpus: 1, reason: "<b>&" });
    assertSane(svg);
    assert.match(svg, /layer 0 \(&lt;b&gt;&amp;\)/);
  });
});
