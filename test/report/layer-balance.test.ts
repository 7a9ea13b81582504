import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AFTER_COLOR, BEFORE_COLOR } from "../../src/report/colors.js";
import { svgLayerBalance } from "../../src/report/layer-balance.js";
import { assertSane, count } from "../helpers/svg.js";

describe("svgLayerBalance", () => {
  it("plots before and after with their means in the legend", () => {
    const svg = svgLayerBalance([0.4, 0.5, 0.6], [0.9, 0.95, 1]);
    assertSane(svg);
    assert.match(svg, /class="chart layer-balance"/);
    assert.equal(count(svg, "<circle"), 6);
    assert.match(svg, /mean before 0\.5/);
    assert.match(svg, /mean after 0\.95/);
  });

  it("draws before in the before colour and after in the after colour, on a 0..1 scale", () => {
    const svg = svgLayerBalance([0.2, 0.4], [0.8, 1]);
    const series = [...svg.matchAll(/<g class="series"[^>]*>.*?<\/g>/g)].map((m) => m[0]);
    assert.equal(series.length, 2);
    assert.match(series[0], new RegExp(BEFORE_COLOR));
    assert.match(series[1], new RegExp(AFTER_COLOR));
    // The y axis spans 0..1 whatever the data (balancedness is at most 1).
    assert.match(svg, />0<\/text>/);
    assert.match(svg, />1<\/text>/);
    // A higher balancedness is drawn higher: smaller y.
    const ys = [...series[1].matchAll(/<circle [^>]*cy="([\d.]+)"/g)].map((m) => Number(m[1]));
    assert.equal(ys.length, 2);
    assert.ok(ys[1] < ys[0], `after: ${ys}`);
  });

  it("states both means in its description, and escapes a given title", () => {
    const svg = svgLayerBalance([0.5, 0.7], [0.9, 0.95], { title: `a<b & "c"` });
    assertSane(svg);
    assert.match(svg, /<title>a&lt;b &amp; &quot;c&quot;<\/title>/);
    assert.match(svg, /each of 2 layers, before EPLB \(mean 0\.6\) and after \(mean 0\.925\)/);
    assert.equal(count(svg, "<circle"), 4);
  });

  it("survives no layers at all", () => {
    const svg = svgLayerBalance([], []);
    assert.ok(svg.startsWith("<svg ") && svg.endsWith("</svg>"));
    assert.match(svg, /each of 0 layers/);
  });
});
