import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { EplbInputError } from "../../src/core/model/errors.js";
import { HEAT_COLORS, HOT_COLOR, heatBin, textColorOn } from "../../src/report/colors.js";
import { svgGpuBars } from "../../src/report/gpu-bars.js";
import { svgHeatmap } from "../../src/report/heatmap.js";
import { svgLayerBalance } from "../../src/report/layer-balance.js";
import { svgPlacementGrid } from "../../src/report/placement-grid.js";
import {
  escapeXml,
  formatNumber,
  niceTicks,
  svgBarChart,
  svgLineChart,
} from "../../src/report/svg.js";

/** Occurrences of `needle` in `text`. */
function count(text: string, needle: string | RegExp): number {
  return (text.match(new RegExp(needle, "g")) ?? []).length;
}

/** The markup inside the first `<g class="NAME" ...>...</g>` that has no nested groups. */
function group(svg: string, cls: string): string {
  const m = new RegExp(`<g class="${cls}"[^>]*>(.*?)</g>`).exec(svg);
  assert.ok(m, `no <g class="${cls}">`);
  return m[1];
}

/** Well-formedness checks every builder's output must pass. */
function assertSane(svg: string): void {
  assert.ok(svg.startsWith("<svg "), "starts with <svg");
  assert.ok(svg.endsWith("</svg>"), "ends with </svg>");
  assert.doesNotMatch(svg, /NaN|Infinity|undefined/, "no NaN/Infinity/undefined leaks");
  assert.match(svg, /role="img"/);
  assert.match(svg, /aria-label="[^"]+"/);
  assert.match(svg, /<title>[^<]+<\/title><desc>[^<]+<\/desc>/);
  assert.equal(count(svg, "<svg"), count(svg, "</svg>"));
  assert.equal(count(svg, "<g[ >]"), count(svg, "</g>"), "balanced groups");
}

describe("escapeXml", () => {
  it("escapes the five XML specials", () => {
    assert.equal(escapeXml(`<a href="x">&'`), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
  });

  it("never leaves a raw special character and round-trips through unescaping", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary" }), (s) => {
        const e = escapeXml(s);
        assert.doesNotMatch(e, /[<>"']/);
        assert.doesNotMatch(e, /&(?!(amp|lt|gt|quot|#39);)/);
        const back = e
          .replace(/&lt;/g, "<")
          .replace(/&gt;/g, ">")
          .replace(/&quot;/g, '"')
          .replace(/&#39;/g, "'")
          .replace(/&amp;/g, "&");
        assert.equal(back, s);
      }),
    );
  });

  it("keeps hostile titles and series names out of the markup", () => {
    const evil = `</title><script>alert(1)</script><g onload="x">`;
    const svg = svgLineChart({
      title: evil,
      series: [{ name: evil, values: [1, 2], color: `red" onclick="x` }],
      xLabel: evil,
      yLabel: evil,
      refLines: [{ value: 1, label: evil, color: "#000" }],
    });
    // Escaped text may spell "onclick=" but never opens a tag or an attribute.
    assert.doesNotMatch(svg, /<script|\son(load|click)="/);
    const bars = svgBarChart({
      title: evil,
      categories: [evil],
      series: [{ name: evil, values: [1], color: "#000" }],
    });
    assert.doesNotMatch(bars, /<script|\son(load|click)="/);
  });
});

describe("formatNumber and niceTicks", () => {
  it("formats with three significant digits and k/M/G suffixes", () => {
    assert.equal(formatNumber(1234567), "1.23M");
    assert.equal(formatNumber(0.93412), "0.934");
    assert.equal(formatNumber(12), "12");
    assert.equal(formatNumber(14000), "14k");
    assert.equal(formatNumber(2.5e9), "2.5G");
    assert.equal(formatNumber(0), "0");
  });

  it("gives round, increasing ticks inside the range", () => {
    assert.deepEqual(niceTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
    fc.assert(
      fc.property(
        fc.double({ min: -1e6, max: 1e6, noNaN: true }),
        fc.double({ min: 1e-3, max: 1e6, noNaN: true }),
        fc.integer({ min: 1, max: 12 }),
        (min, span, n) => {
          const max = min + span;
          const t = niceTicks(min, max, n);
          assert.ok(t.length >= 1 && t.length <= 2 * n + 2, `${t.length} ticks for ${n}`);
          for (let i = 0; i < t.length; i++) {
            assert.ok(t[i] >= min - span * 1e-6 && t[i] <= max + span * 1e-6);
            if (i > 0) assert.ok(t[i] > t[i - 1]);
          }
        },
      ),
    );
  });
});

describe("svgLineChart", () => {
  it("draws one path per series and one marker per point", () => {
    const svg = svgLineChart({
      title: "t",
      series: [
        { name: "a", values: [0.5, 0.6, 0.7], color: "#111" },
        { name: "b", values: [0.9, 0.8, 0.95], color: "#222" },
      ],
    });
    assertSane(svg);
    assert.equal(count(svg, '<g class="series"'), 2);
    assert.equal(count(svg, "<circle"), 6);
  });

  it("downsamples series longer than maxPoints and says so", () => {
    const values = Array.from({ length: 10_000 }, (_, i) => i % 7);
    const svg = svgLineChart({
      title: "t",
      series: [{ name: "a", values, color: "#111" }],
      maxPoints: 500,
    });
    assertSane(svg);
    assert.match(svg, /data-bucket="20"/);
    assert.match(svg, /mean of 20 consecutive values/);
    const d = /<path d="([^"]*)"/.exec(svg)?.[1] ?? "";
    assert.equal(count(d, "[ML]"), 500);
    assert.equal(count(svg, "<circle"), 0);
  });

  it("leaves gaps at NaN and survives empty and all-zero series", () => {
    const svg = svgLineChart({
      title: "t",
      series: [{ name: "a", values: [1, Number.NaN, 2, 3], color: "#111" }],
    });
    assertSane(svg);
    const d = /<path d="([^"]*)"/.exec(svg)?.[1] ?? "";
    assert.equal(count(d, "M"), 2, "the NaN splits the line in two");
    assertSane(svgLineChart({ title: "t", series: [{ name: "a", values: [], color: "#111" }] }));
    assertSane(svgLineChart({ title: "t", series: [{ name: "a", values: [0, 0], color: "#1" }] }));
  });
});

describe("svgBarChart", () => {
  it("draws categories x series bars, each with a tooltip", () => {
    const svg = svgBarChart({
      title: "t",
      categories: ["a", "b", "c"],
      series: [
        { name: "x", values: [1, 2, 3], color: "#111" },
        { name: "y", values: [3, 2, 1], color: "#222" },
      ],
      refLines: [{ value: 2, label: "mean", color: "#333" }],
    });
    assertSane(svg);
    assert.equal(count(svg, "<rect [^>]*><title>"), 6);
    assert.match(svg, /<title>b y: 2<\/title>/);
    assert.match(svg, /data-bars="6"/);
  });

  it("handles all-zero values", () => {
    const svg = svgBarChart({
      title: "t",
      categories: ["a", "b"],
      series: [{ name: "x", values: [0, 0], color: "#111" }],
    });
    assertSane(svg);
    assert.match(svg, /height="0"/);
  });
});

describe("svgLayerBalance", () => {
  it("plots before and after with their means in the legend", () => {
    const svg = svgLayerBalance([0.4, 0.5, 0.6], [0.9, 0.95, 1]);
    assertSane(svg);
    assert.match(svg, /class="chart layer-balance"/);
    assert.equal(count(svg, "<circle"), 6);
    assert.match(svg, /mean before 0\.5/);
    assert.match(svg, /mean after 0\.95/);
  });
});

describe("svgGpuBars", () => {
  it("draws a bar per GPU in both panels and marks the busiest in red", () => {
    const svg = svgGpuBars(3, [10, 2, 3, 1], [4, 4, 5, 3], { lowerBound: 4, gpusPerNode: 2 });
    assertSane(svg);
    assert.match(svg, /data-bars="8"/);
    const before = /data-panel="before">(.*?)<\/g><\/g>/.exec(svg)?.[1] ?? "";
    assert.equal(count(before, "<rect "), 4);
    assert.match(svg, new RegExp(`fill="${HOT_COLOR}"><title>GPU 0 \\(node 0\\): 10`));
    assert.match(svg, new RegExp(`fill="${HOT_COLOR}"><title>GPU 2 \\(node 1\\): 5`));
    assert.match(svg, /lower bound 4/);
    assert.equal(count(svg, 'class="sep"'), 2, "one node separator per panel");
  });

  it("bins thousands of GPUs into the busiest of each run and says so", () => {
    const n = 2048;
    const before = Array.from({ length: n }, (_, i) => (i === 1234 ? 99 : 1));
    const svg = svgGpuBars(0, before, before, { width: 1120 });
    assertSane(svg);
    assert.match(svg, /busiest of \d+ consecutive GPUs/);
    const bars = Number(/data-bars="(\d+)"/.exec(svg)?.[1]);
    assert.ok(bars < n, `${bars} bars for ${n} GPUs`);
    assert.match(svg, /: 99, /, "the hot GPU survives binning");
  });

  it("survives a layer with zero load and no lower bound", () => {
    const svg = svgGpuBars(0, [0, 0, 0], [0, 0, 0]);
    assertSane(svg);
    assert.doesNotMatch(svg, /lower bound/);
  });
});

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
});

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
});

describe("colours", () => {
  it("picks the readable text colour", () => {
    assert.equal(textColorOn("#ffff00"), "#111");
    assert.equal(textColorOn("#202060"), "#fff");
  });
});
