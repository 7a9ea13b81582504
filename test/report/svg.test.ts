import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  escapeXml,
  formatNumber,
  niceTicks,
  svgBarChart,
  svgLineChart,
} from "../../src/report/svg.js";
import { assertSane, count } from "../helpers/svg.js";

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
