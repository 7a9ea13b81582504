import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { HEAT_COLORS, HEAT_EDGES, heatBin } from "../../src/report/colors.js";
import { heatLabel, svgHeatmap } from "../../src/report/heatmap.js";
import { assertSane, count } from "../helpers/svg.js";

describe("svgHeatmap", () => {
  /** Rectangles `[column, row, width, height]` (in cells) of a heatmap's paths, per colour bin. */
  function cells(svg: string): Map<number, number[][]> {
    const out = new Map<number, number[][]>();
    for (const m of svg.matchAll(/<path data-bin="(\d+)" fill="[^"]+" d="([^"]*)"/g)) {
      const rects = [...m[2].matchAll(/M(\d+) (\d+)h(\d+)v1h-\3z/g)].map((r) =>
        r.slice(1).map(Number),
      );
      assert.equal(m[2].split("M").length - 1, rects.length, "every subpath is a run of cells");
      out.set(Number(m[1]), [...rects.map(([x, y, w]) => [x, y, w, 1])]);
    }
    return out;
  }

  it("colours each expert by its load relative to the layer mean, one path per colour", () => {
    const loads = { layers: 2, experts: 4, data: new Float64Array([1, 1, 1, 1, 0, 0, 0, 8]) };
    const svg = svgHeatmap(loads);
    assertSane(svg);
    assert.match(svg, /data-rows="2" data-cols="4" data-cells="8"/);
    const bins = cells(svg);
    // Layer 0: all at 1x the mean (bin 4), one merged run; layer 1: three zeros then 4x.
    assert.equal(bins.get(heatBin(1))?.length, 1);
    assert.equal(bins.get(heatBin(0))?.length, 1);
    assert.equal(bins.get(heatBin(4))?.length, 1);
    assert.ok(count(svg, "<path data-bin") <= HEAT_COLORS.length);
  });

  it("covers the plot exactly: every (layer, expert) cell drawn once", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 0, max: 1000 }),
        (layers, experts, seed) => {
          const data = new Float64Array(layers * experts);
          for (let i = 0; i < data.length; i++) data[i] = ((i * 7919 + seed) % 13) * (seed % 3);
          const svg = svgHeatmap({ layers, experts, data }, { width: 600 });
          assertSane(svg);
          const covered = new Set<string>();
          for (const rects of cells(svg).values()) {
            for (const [x, y, w] of rects) {
              for (let c = x; c < x + w; c++) {
                assert.ok(!covered.has(`${c},${y}`), "no cell drawn twice");
                covered.add(`${c},${y}`);
              }
            }
          }
          assert.equal(covered.size, layers * experts, "every cell drawn once");
        },
      ),
      { numRuns: 60 },
    );
  });

  it("bins wide matrices, keeping the hottest expert of each bin, and says so", () => {
    const E = 4096;
    const data = new Float64Array(2 * E).fill(1);
    data[E + 100] = 1000;
    const svg = svgHeatmap({ layers: 2, experts: E, data }, { width: 1120 });
    assertSane(svg);
    const kx = Number(/data-bin-experts="(\d+)"/.exec(svg)?.[1]);
    assert.ok(kx > 1);
    assert.match(svg, new RegExp(`hottest of ${kx} adjacent experts`));
    assert.ok(cells(svg).has(HEAT_COLORS.length - 1), "the hot expert keeps the darkest colour");
  });

  it("treats an all-zero matrix as cold, not NaN", () => {
    const svg = svgHeatmap({ layers: 3, experts: 5, data: new Float64Array(15) });
    assertSane(svg);
    assert.deepEqual([...cells(svg).keys()], [0]);
  });

  /** Bin of every drawn cell, `bins[row][column]`, read back from the paths. */
  function binGrid(svg: string, rows: number, cols: number): number[][] {
    const out = Array.from({ length: rows }, () => new Array<number>(cols).fill(-1));
    for (const [bin, rects] of cells(svg)) {
      for (const [x, y, w] of rects) for (let c = x; c < x + w; c++) out[y][c] = bin;
    }
    return out;
  }

  it("colours every (layer, expert) cell by heatBin(load / its layer's mean), as a plain loop does", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 30 }),
        fc.array(fc.nat({ max: 50 }), { minLength: 150, maxLength: 150 }),
        (layers, experts, pool) => {
          const data = Float64Array.from({ length: layers * experts }, (_, i) => pool[i % 150]);
          const grid = binGrid(svgHeatmap({ layers, experts, data }), layers, experts);
          for (let l = 0; l < layers; l++) {
            let sum = 0;
            for (let e = 0; e < experts; e++) sum += data[l * experts + e];
            const mean = sum / experts;
            for (let e = 0; e < experts; e++) {
              const want = heatBin(mean > 0 ? data[l * experts + e] / mean : 0);
              assert.equal(grid[l][e], want, `layer ${l}, expert ${e}`);
            }
          }
        },
      ),
      { seed: 15, numRuns: 80 },
    );
  });

  it("compares layers by their own mean: a layer ten times busier gets the same colours", () => {
    const svg = svgHeatmap({
      layers: 2,
      experts: 3,
      data: new Float64Array([1, 2, 3, 10, 20, 30]),
    });
    const grid = binGrid(svg, 2, 3);
    assert.deepEqual(grid[0], grid[1]);
    assert.deepEqual(grid[0], [heatBin(0.5), heatBin(1), heatBin(1.5)]);
  });

  it("bins tall matrices over layers and says so", () => {
    const data = new Float64Array(10 * 4).fill(1);
    data[9 * 4 + 2] = 100; // the last layer's hot expert
    const svg = svgHeatmap({ layers: 10, experts: 4, data }, { maxRows: 3 });
    assertSane(svg);
    assert.match(
      svg,
      /data-rows="3" data-cols="4" data-cells="12" data-bin-experts="1" data-bin-layers="4"/,
    );
    assert.match(svg, /hottest of one expert over 4 adjacent layers/);
    // Relative to its own layer's mean (103 / 4), not to the bin's.
    assert.equal(binGrid(svg, 3, 4)[2][2], heatBin(100 / (103 / 4)));
    assert.equal(binGrid(svg, 3, 4)[2][1], heatBin(1));
  });

  it("draws a separator between expert groups, only when the groups divide the experts", () => {
    const data = new Float64Array(16).fill(1);
    const grouped = svgHeatmap({ layers: 1, experts: 16, data }, { numGroups: 4 });
    assert.equal(count(/<g class="group-sep">(.*?)<\/g>/.exec(grouped)?.[1] ?? "", "<line"), 3);
    assert.doesNotMatch(
      svgHeatmap({ layers: 1, experts: 16, data }, { numGroups: 3 }),
      /group-sep/,
    );
    assert.doesNotMatch(svgHeatmap({ layers: 1, experts: 16, data }), /group-sep/);
  });

  it("escapes its title", () => {
    const svg = svgHeatmap(
      { layers: 1, experts: 2, data: new Float64Array([1, 2]) },
      { title: `</title><script>alert(1)</script>` },
    );
    assertSane(svg);
    assert.doesNotMatch(svg, /<script/);
    assert.match(svg, /aria-label="&lt;\/title&gt;&lt;script&gt;/);
  });

  it("labels every bin of the legend by its edges", () => {
    assert.equal(heatLabel(0), "< 0.25x");
    assert.equal(heatLabel(1), "0.25-0.5x");
    assert.equal(heatLabel(4), "1-1.5x");
    assert.equal(heatLabel(HEAT_EDGES.length), ">= 5x");
    const svg = svgHeatmap({ layers: 1, experts: 2, data: new Float64Array([1, 2]) });
    for (let b = 0; b < HEAT_COLORS.length; b++) {
      assert.ok(
        svg.includes(`${heatLabel(b).replace("<", "&lt;").replace(">", "&gt;")}`),
        `bin ${b}`,
      );
    }
  });
});
