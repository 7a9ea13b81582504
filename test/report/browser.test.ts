import assert from "node:assert/strict";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { pathToFileURL } from "node:url";
import type { Browser, Page } from "playwright-core";
import { lognormalLoads } from "../../src/core/blocks/random.js";
import { toLoadMatrix } from "../../src/core/model/matrix.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import { htmlReport } from "../../src/report/html.js";
import { buildReportModel, type ReportModel } from "../../src/report/model.js";
import { launchChromium, SKIP_BROWSER_ENV } from "../helpers/browser.js";
import { cli, repoRoot } from "../helpers/cli.js";

// The page functions below run in the browser; the project compiles without the DOM library, so
// the little of it they use is declared here.
declare const document: {
  documentElement: { scrollWidth: number };
  getElementsByTagName(name: string): { length: number };
};
/** A table row as the page functions see it. */
interface Row {
  children: ArrayLike<{ textContent: string | null }>;
}

const outDir = join(repoRoot, "test-output");
const skip = process.env[SKIP_BROWSER_ENV] === "1";

let browser: Browser | undefined;

before(async () => {
  if (skip) return;
  mkdirSync(outDir, { recursive: true });
  // No Chromium is a failure, never a silent skip (test/helpers/browser.ts says where it comes from).
  const launched = await launchChromium();
  browser = launched.browser;
  console.log(`browser test: ${launched.source}`);
});

after(async () => {
  await browser?.close();
});

/** What a page did while loading: console messages worth failing on, and every request. */
interface Visit {
  page: Page;
  problems: string[];
  requests: string[];
}

async function open(file: string): Promise<Visit> {
  assert.ok(browser, "browser launched");
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warning") problems.push(`${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`pageerror: ${e.message}`));
  page.on("request", (r) => requests.push(r.url()));
  await page.goto(pathToFileURL(file).href, { waitUntil: "load" });
  return { page, problems, requests };
}

/** Width and height of every element matching `selector` (in page pixels). */
async function boxes(page: Page, selector: string): Promise<{ w: number; h: number }[]> {
  return page.$$eval(selector, (els) =>
    els.map((e) => {
      const r = e.getBoundingClientRect();
      return { w: r.width, h: r.height };
    }),
  );
}

async function countOf(page: Page, selector: string): Promise<number> {
  return page.$$eval(selector, (els) => els.length);
}

/** Checks every chart of a report against its model. */
async function checkReport(v: Visit, file: string, m: ReportModel): Promise<void> {
  const { page } = v;
  // Every chart is drawn with a real size and fits a 1280 px window.
  const charts = await boxes(page, "svg.chart");
  const details = m.detailLayers.length;
  assert.equal(charts.length, 2 + 2 * details + 1, "line charts, bars and grids, heatmap");
  for (const b of charts) assert.ok(b.w > 300 && b.h > 100, `chart box ${b.w}x${b.h}`);
  const scrollWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(scrollWidth <= 1280, `no horizontal scrolling (${scrollWidth} px)`);

  // Balancedness per layer: two lines with one marker per layer (up to 80 layers).
  const lines = await boxes(page, "svg.layer-balance g.series path");
  assert.equal(lines.length, 2);
  for (const b of lines) assert.ok(b.w > 100, "each line spans the layers");
  if (m.layers <= 80) {
    assert.equal(await countOf(page, "svg.layer-balance g.series circle"), 2 * m.layers);
  }

  // GPU bars: one bar per GPU per panel, visible where the GPU has load.
  assert.equal(await countOf(page, "svg.gpu-bars"), details);
  assert.equal(await countOf(page, "svg.gpu-bars g.bars rect"), details * 2 * m.numGpus);
  const bars = await boxes(page, "svg.gpu-bars g.bars rect");
  assert.ok(bars.filter((b) => b.h > 0 && b.w > 0).length >= bars.length * 0.9);

  // Placement grids: one cell and one label per slot, node headers when there are nodes.
  assert.equal(await countOf(page, "svg.placement-grid"), details);
  assert.equal(await countOf(page, "svg.placement-grid g.cells rect"), details * m.numReplicas);
  assert.equal(
    await countOf(page, "svg.placement-grid g.cell-labels text"),
    details * m.numReplicas,
  );
  const cells = await boxes(page, "svg.placement-grid g.cells rect");
  for (const b of cells) assert.ok(b.w >= 10 && b.h >= 10, `grid cell ${b.w}x${b.h}`);
  if (m.numNodes > 1) {
    assert.equal(await countOf(page, "svg.placement-grid text.node"), details * m.numNodes);
  }
  const labels = await page.$$eval("svg.placement-grid g.cell-labels text", (els) =>
    els.map((e) => Number(e.textContent)),
  );
  const slotsShown = m.detailLayers.flatMap((d) =>
    Array.from(
      m.placement.phy2log.subarray(d.layer * m.numReplicas, (d.layer + 1) * m.numReplicas),
    ),
  );
  assert.deepEqual(labels, slotsShown, "cells are labelled with the placement's expert ids");

  // Heatmap: every (layer, expert) cell covered, drawn as a few paths filling the plot.
  const heat = await page.$eval("svg.heatmap", (e) => ({
    cells: Number(e.getAttribute("data-cells")),
    paths: e.querySelectorAll("g.cells path").length,
    area: e.querySelector("g.cells")?.getBoundingClientRect(),
    frame: e.querySelector("rect.frame")?.getBoundingClientRect(),
  }));
  assert.equal(heat.cells, m.layers * m.numExperts);
  assert.ok(heat.paths >= 1 && heat.paths <= 9);
  assert.ok(heat.area && heat.frame);
  assert.ok(Math.abs(heat.area.width - heat.frame.width) < 2, "cells span the plot width");
  assert.ok(Math.abs(heat.area.height - heat.frame.height) < 2, "cells span the plot height");

  // Summary table text.
  const summary = await page.$$eval("table.summary-table tbody tr", (rows: Row[]) =>
    rows.map((r) => Array.from(r.children, (c) => c.textContent?.trim())),
  );
  assert.deepEqual(summary[0], [
    "Balancedness, mean over layers",
    m.before.balancedness.toFixed(3),
    m.after.balancedness.toFixed(3),
  ]);
  assert.deepEqual(summary[3], [
    "Max GPU load / lower bound, worst layer",
    m.before.worstMaxOverLowerBound.toFixed(3),
    m.after.worstMaxOverLowerBound.toFixed(3),
  ]);
  assert.deepEqual(summary[5], [
    "GPUs holding two replicas of one expert",
    "0",
    String(m.after.duplicateGpus),
  ]);
  const shape = await page.$$eval("table.shape-table tr", (rows: Row[]) =>
    Object.fromEntries(rows.map((r) => Array.from(r.children, (c) => c.textContent?.trim()))),
  );
  assert.equal(
    shape["Slots per layer"],
    `${m.numReplicas} (${m.numReplicas - m.numExperts} redundant)`,
  );
  assert.equal(shape["Nodes x GPUs per node"], `${m.numNodes} x ${m.gpusPerNode}`);

  // Accessible: every chart has a name and a description.
  const unnamed = await page.$$eval(
    "svg.chart",
    (els) =>
      els.filter((e) => !e.getAttribute("aria-label") || !e.querySelector(":scope > desc")).length,
  );
  assert.equal(unnamed, 0);

  // Clean console, nothing fetched but the file itself.
  assert.deepEqual(v.problems, []);
  assert.deepEqual(v.requests, [pathToFileURL(file).href]);
}

/** Writes a seeded synthetic trace with `eplb synth` into the test output folder. */
async function synthTrace(
  name: string,
  steps: number,
  layers: number,
  experts: number,
  seed: number,
): Promise<string> {
  const path = join(outDir, name);
  const args = ["--steps", steps, "--layers", layers, "--experts", experts, "--seed", seed];
  const r = await cli(["synth", ...args.map(String), "--out", path]);
  assert.equal(r.code, 0, r.stderr);
  return path;
}

describe("HTML report in headless Chromium", { skip: skip && `${SKIP_BROWSER_ENV}=1` }, () => {
  it("renders a DeepSeek-V3 prefill-sized report (58 x 256 -> 288 slots, 4 nodes x 8 GPUs)", async () => {
    const loads = lognormalLoads(58, 256, 1.0, 2024);
    const { placement, topology } = rebalanceExperts(loads, 288, 8, 4, 32);
    const model = buildReportModel({
      loads,
      placement,
      numGpus: 32,
      numNodes: 4,
      numGroups: 8,
      policy: "deepseek",
      mode: topology.hierarchical ? "hierarchical" : "global",
      sources: { loads: "lognormal(sigma=1.0, seed 2024), 58 x 256" },
      title: "EPLB report: DeepSeek-V3 prefill shape",
    });
    const file = join(outDir, "report-dsv3.html");
    const html = htmlReport(model);
    writeFileSync(file, html);
    assert.ok(statSync(file).size < 2e6, `${statSync(file).size} bytes`);
    const v = await open(file);
    try {
      await checkReport(v, file, model);
      const elements = await v.page.evaluate(() => document.getElementsByTagName("*").length);
      assert.ok(elements < 10_000, `${elements} DOM elements`);
      await v.page.screenshot({ path: join(outDir, "report.png"), fullPage: true });
      assert.ok(statSync(join(outDir, "report.png")).size > 10_000, "a screenshot with content");
    } finally {
      await v.page.close();
    }
  });

  it("renders eplb simulate's report: the simulation section, then the last placement", async () => {
    const trace = await synthTrace("sim-trace.npy", 400, 6, 32, 2);
    const file = join(outDir, "report-simulate.html");
    const args = [
      "simulate",
      "--trace",
      trace,
      "--replicas",
      "40",
      "--groups",
      "4",
      "--nodes",
      "2",
      "--gpus",
      "8",
      "--interval",
      "50",
    ];
    const r = await cli([...args, "--json", "--html", file]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    const v = await open(file);
    try {
      const { page } = v;
      // The strategies' table shows the JSON's figures, in order.
      const rows = await page.$$eval("#simulation table.sim-table tbody tr", (trs: Row[]) =>
        trs.map((tr) => Array.from(tr.children, (c) => c.textContent?.trim())),
      );
      assert.equal(rows.length, 4);
      assert.equal(rows[0][1], j.meanRealizedBalancedness.toFixed(4));
      assert.equal(rows[1][0], "deepseek re-planning (window mean)");
      assert.equal(rows[1][1], j.baselines.deepseek.meanRealizedBalancedness.toFixed(4));
      assert.equal(rows[2][1], j.baselines.oracle.meanRealizedBalancedness.toFixed(4));
      assert.equal(rows[3][1], j.baselines.none.meanRealizedBalancedness.toFixed(4));
      // Balancedness over time: one line per strategy across the plot.
      const lines = await boxes(page, "#simulation svg.line-chart g.series path");
      assert.equal(lines.length, 4);
      for (const b of lines) assert.ok(b.w > 300, `a line spans the steps (${b.w} px)`);
      // Moves per rebalance: one bar per rebalance after the first, for eplb, deepseek, oracle.
      const bars = await countOf(page, "#simulation svg.bar-chart g.bars rect");
      assert.equal(bars, 3 * (j.rebalances - 1));
      // Then the standard sections for the last placement, every chart drawn with a real size.
      for (const id of ["summary", "layers", "gpus", "placement", "heatmap"]) {
        assert.equal(await countOf(page, `section#${id}`), 1, id);
      }
      for (const b of await boxes(page, "svg.chart")) assert.ok(b.w > 300 && b.h > 100);
      assert.deepEqual(v.problems, []);
      assert.deepEqual(v.requests, [pathToFileURL(file).href]);
    } finally {
      await v.page.close();
    }
    // A sweep's report: balancedness and share moved per configuration, beside the baselines.
    const sweepFile = join(outDir, "report-sweep.html");
    const s = await cli([...args, "--sweep", "interval=25,50,100", "--json", "--html", sweepFile]);
    assert.equal(s.code, 0, s.stderr);
    const w = await open(sweepFile);
    try {
      const charts = await boxes(w.page, "#sweep svg.bar-chart");
      assert.equal(charts.length, 2);
      for (const b of charts) assert.ok(b.w > 300 && b.h > 100);
      // Three configurations: eplb, deepseek and oracle balancedness; eplb and deepseek moves.
      assert.equal(await countOf(w.page, "#sweep svg.bar-chart g.bars rect"), 3 * 3 + 3 * 2);
      assert.deepEqual(w.problems, []);
      assert.deepEqual(w.requests, [pathToFileURL(sweepFile).href]);
    } finally {
      await w.page.close();
    }
  });

  /** Plans steps 0..99 of the trace, then reports the rebalance from it to steps 200..299. */
  async function migrationReport(
    trace: string,
    shape: string[],
    initName: string,
    html: string,
    extra: string[] = [],
  ) {
    const init = join(outDir, initName);
    const planned = await cli([
      "plan",
      "--loads",
      trace,
      "--steps",
      "0:100",
      ...shape,
      "--out",
      init,
    ]);
    assert.equal(planned.code, 0, planned.stderr);
    const args = ["--loads", trace, "--steps", "200:300", ...shape, "--previous", init];
    return cli(["report", ...args, ...extra, "--html", html]);
  }

  it("renders a rebalance from a previous placement: migration charts and changed slots outlined", async () => {
    const trace = await synthTrace("migration-trace.npy", 300, 8, 64, 4);
    const shape = ["--replicas", "80", "--groups", "8", "--nodes", "2", "--gpus", "16"];
    const file = join(outDir, "report-migration.html");
    const r = await migrationReport(trace, shape, "migration-init.json", file);
    assert.equal(r.code, 0, r.stderr);
    const v = await open(file);
    try {
      const { page } = v;
      const lines = await boxes(page, "#migration svg.migration-balance g.series path");
      assert.equal(lines.length, 2, "previous and new balancedness per layer");
      for (const b of lines) assert.ok(b.w > 300);
      assert.equal(await countOf(page, "#migration svg.migration-moves g.bars rect"), 8);
      // Weights received per GPU: from its node and from another node, for each of 16 GPUs.
      assert.equal(await countOf(page, "#migration svg.migration-gpus g.bars rect"), 2 * 16);
      // Every grid outlines as many cells as it says changed, and they are drawn.
      const grids = await page.$$eval("#placement svg.placement-grid", (els) =>
        els.map((e) => ({
          moved: Number(e.getAttribute("data-moved")),
          outlined: e.querySelectorAll("g.cells rect.moved").length,
        })),
      );
      assert.ok(grids.length >= 1);
      for (const g of grids) assert.equal(g.outlined, g.moved);
      assert.ok(
        grids.some((g) => g.moved > 0),
        "some slots changed",
      );
      for (const b of await boxes(page, "svg.chart")) assert.ok(b.w > 300 && b.h > 100);
      assert.deepEqual(v.problems, []);
      assert.deepEqual(v.requests, [pathToFileURL(file).href]);
    } finally {
      await v.page.close();
    }
  });

  it("renders the priced reports: cumulative time per strategy, a rebalance's transfer rounds", async () => {
    const trace = await synthTrace("priced-trace.npy", 300, 8, 64, 5);
    const shape = ["--replicas", "80", "--groups", "8", "--nodes", "2", "--gpus", "16"];
    const cost = ["--model", "deepseek-v3", "--hardware", "h800"];
    const sim = join(outDir, "report-simulate-priced.html");
    const r = await cli([
      "simulate",
      "--trace",
      trace,
      ...shape,
      "--interval",
      "50",
      ...cost,
      "--html",
      sim,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const v = await open(sim);
    try {
      // Balancedness over time, then cumulative time: one line per strategy in each.
      const charts = await v.page.$$eval("#simulation svg.line-chart", (els) =>
        els.map((e) => e.querySelectorAll("g.series path").length),
      );
      assert.deepEqual(charts, [4, 4]);
      for (const b of await boxes(v.page, "svg.chart")) assert.ok(b.w > 300 && b.h > 100);
      assert.deepEqual(v.problems, []);
    } finally {
      await v.page.close();
    }
    const moves = join(outDir, "report-migration-priced.html");
    const m = await migrationReport(trace, shape, "priced-init.json", moves, cost);
    assert.equal(m.code, 0, m.stderr);
    const w = await open(moves);
    try {
      const rounds = await boxes(w.page, "#migration svg.transfer-rounds");
      assert.equal(rounds.length, 1);
      assert.ok(rounds[0].w > 300 && rounds[0].h > 100);
      assert.deepEqual(w.problems, []);
    } finally {
      await w.page.close();
    }
  });

  it("renders the report eplb report writes for examples/loads.json", async () => {
    const file = join(outDir, "report-example.html");
    const example = join(repoRoot, "examples", "loads.json");
    const args = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"];
    const r = await cli(["report", "--loads", example, "--html", file, ...args], repoRoot);
    assert.equal(r.code, 0, r.stderr);
    const loads = toLoadMatrix(JSON.parse(readFileSync(example, "utf8")).weight);
    const { placement } = rebalanceExperts(loads, 16, 4, 2, 8);
    const model = buildReportModel({ loads, placement, numGpus: 8, numNodes: 2, numGroups: 4 });
    const v = await open(file);
    try {
      await checkReport(v, file, model);
      await v.page.screenshot({ path: join(outDir, "report-example.png"), fullPage: true });
    } finally {
      await v.page.close();
    }
  });
});
