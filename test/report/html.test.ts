import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { lognormalLoads } from "../../src/core/blocks/random.js";
import { toLoadMatrix } from "../../src/core/model/matrix.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import { defaultSections, htmlReport, type ReportSection } from "../../src/report/html.js";
import { buildReportModel } from "../../src/report/model.js";
import { svgLineChart } from "../../src/report/svg.js";

const example = toLoadMatrix([
  [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
  [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
]);

function exampleModel(title?: string) {
  const { placement } = rebalanceExperts(example, 16, 4, 2, 8);
  return buildReportModel({
    loads: example,
    placement,
    numGpus: 8,
    numNodes: 2,
    numGroups: 4,
    policy: "deepseek",
    title,
  });
}

describe("htmlReport", () => {
  it("is one self-contained page: no scripts, no external resources, a strict CSP", () => {
    const html = htmlReport(exampleModel());
    assert.match(html, /^<!doctype html>\n<html lang="en">/);
    assert.doesNotMatch(html, /<script|<link|<img|<iframe|@import|url\(/i);
    assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
    // The only URL is the SVG namespace, which names and never fetches.
    for (const m of html.matchAll(/https?:\/\/[^"'\s)]+/g)) {
      assert.equal(m[0], "http://www.w3.org/2000/svg");
    }
    for (const m of html.matchAll(/href="([^"]*)"/g)) assert.match(m[1], /^#[a-z-]+$/);
    assert.doesNotMatch(html, /NaN|undefined/);
  });

  it("has the default sections in order, each linked from the navigation", () => {
    const html = htmlReport(exampleModel());
    const ids = [...html.matchAll(/<section id="([^"]+)"/g)].map((m) => m[1]);
    assert.deepEqual(
      ids,
      defaultSections().map((s) => s.id),
    );
    for (const id of ids) assert.match(html, new RegExp(`<a href="#${id}">`));
    assert.equal((html.match(/class="chart placement-grid"/g) ?? []).length, 2);
    assert.equal((html.match(/class="chart gpu-bars"/g) ?? []).length, 2);
  });

  it("puts the summary figures in the table", () => {
    const m = exampleModel();
    const html = htmlReport(m);
    const row = (label: string, before: string, after: string) =>
      `<tr><th scope="row">${label}</th><td>${before}</td><td>${after}</td></tr>`;
    assert.ok(
      html.includes(
        row(
          "Balancedness, mean over layers",
          m.before.balancedness.toFixed(3),
          m.after.balancedness.toFixed(3),
        ),
      ),
    );
    assert.ok(
      html.includes(
        row("GPUs holding two replicas of one expert", "0", String(m.after.duplicateGpus)),
      ),
    );
    assert.match(html, /<th scope="row">Policy<\/th><td>deepseek<\/td>/);
  });

  it("escapes the title and the file names", () => {
    const m = exampleModel(`<b>"x" & 'y'</b>`);
    m.sources.loads = "<img src=x onerror=alert(1)>.json";
    const html = htmlReport(m);
    assert.doesNotMatch(html, /<b>|<img/);
    assert.match(html, /<title>&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;\/b&gt;<\/title>/);
  });

  it("appends extra sections (the extension point for simulation results)", () => {
    const sim: ReportSection = {
      id: "simulation",
      title: "Simulation",
      render: () =>
        svgLineChart({
          title: "Balancedness over time",
          series: [{ name: "realised", values: [0.9, 0.8, 0.95], color: "#2166ac" }],
        }),
    };
    const html = htmlReport(exampleModel(), { extraSections: [sim] });
    const ids = [...html.matchAll(/<section id="([^"]+)"/g)].map((m) => m[1]);
    assert.equal(ids.at(-1), "simulation");
    assert.match(html, /<a href="#simulation">Simulation<\/a>/);
    const only = htmlReport(exampleModel(), { sections: [sim] });
    assert.deepEqual(
      [...only.matchAll(/<section id="([^"]+)"/g)].map((m) => m[1]),
      ["simulation"],
    );
  });

  it("renders all-zero loads without NaN", () => {
    const loads = toLoadMatrix([
      [0, 0, 0, 0],
      [0, 0, 0, 0],
    ]);
    const { placement } = rebalanceExperts(loads, 8, 1, 1, 4);
    const html = htmlReport(buildReportModel({ loads, placement, numGpus: 4 }));
    assert.doesNotMatch(html, /NaN|Infinity|undefined/);
    assert.match(html, /Balancedness, mean over layers<\/th><td>1\.000<\/td><td>1\.000<\/td>/);
  });

  it("keeps a DeepSeek-V3 prefill report small (< 2 MB)", () => {
    const loads = lognormalLoads(58, 256, 1.0, 11);
    const { placement } = rebalanceExperts(loads, 288, 8, 4, 32);
    const html = htmlReport(
      buildReportModel({ loads, placement, numGpus: 32, numNodes: 4, numGroups: 8 }),
    );
    const bytes = Buffer.byteLength(html);
    assert.ok(bytes < 2e6, `${bytes} bytes`);
    // Elements: the heatmap is a handful of paths, not 14,848 cells.
    const tags = (html.match(/<[a-z]/g) ?? []).length;
    assert.ok(tags < 10_000, `${tags} elements`);
  });
});
