import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { lognormalLoads, Random } from "../../src/core/blocks/random.js";
import { gpuLoads, summarizeBalance } from "../../src/core/evaluation/metrics.js";
import { gpuTransferCounts, planTransfers } from "../../src/core/evaluation/transfers.js";
import { EplbInputError } from "../../src/core/model/errors.js";
import { matrixToArrays } from "../../src/core/model/matrix.js";
import { makeTopology } from "../../src/core/model/topology.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import { htmlReport } from "../../src/report/html.js";
import { migrationSections } from "../../src/report/migration.js";
import { buildReportModel, migrationView } from "../../src/report/model.js";
import { svgPlacementGrid } from "../../src/report/placement-grid.js";
import { cli } from "../helpers/cli.js";

// Two windows of a 4-layer, 32-expert model on 8 GPUs in 2 nodes, the second drifted by 20%.
const first = lognormalLoads(4, 32, 1, 11);
const rng = new Random(12);
const second = { ...first, data: first.data.map((v) => v * rng.lognormal(0.2)) };
const previous = rebalanceExperts(first, 40, 4, 2, 8).placement;
const next = rebalanceExperts(second, 40, 4, 2, 8, { previous }).placement;

describe("migrationView: what a rebalance from a previous placement moves and buys", () => {
  it("counts changed slots per layer, transfers as planTransfers, and the previous balance", () => {
    const v = migrationView(second, previous, next, 8, 2, 4);
    for (let l = 0; l < 4; l++) {
      let changed = 0;
      for (let s = 0; s < 40; s++) {
        if (previous.phy2log[l * 40 + s] !== next.phy2log[l * 40 + s]) changed++;
      }
      assert.equal(v.changedPerLayer[l], changed);
    }
    assert.equal(
      v.slotsChanged,
      v.changedPerLayer.reduce((a, b) => a + b, 0),
    );
    assert.ok(v.slotsChanged > 0);
    const plan = planTransfers(previous, next, makeTopology(32, 40, 4, 2, 8));
    assert.deepEqual(v.transfers, {
      local: plan.local,
      intraNode: plan.intraNode,
      interNode: plan.interNode,
    });
    assert.equal(plan.local + plan.intraNode + plan.interNode, v.slotsChanged);
    assert.deepEqual(
      v.previousBalance,
      summarizeBalance(gpuLoads(second, previous, { numGpus: 8 }), 4, 8),
    );
    assert.deepEqual(v.perGpu, gpuTransferCounts(plan, makeTopology(32, 40, 4, 2, 8)));
  });

  it("refuses a previous placement of another shape, naming it", () => {
    const other = rebalanceExperts(first, 48, 4, 2, 8).placement;
    assert.throws(
      () => migrationView(second, other, next, 8, 2, 4),
      (e: unknown) =>
        e instanceof EplbInputError && /previous\.numReplicas \(48\) must equal/.test(e.message),
    );
  });

  it("the report gains a migration section after the summary and outlines changed slots", () => {
    const model = buildReportModel({
      loads: second,
      placement: next,
      numGpus: 8,
      numNodes: 2,
      numGroups: 4,
      previous,
      detailLayers: [0],
    });
    const html = htmlReport(model, { sections: migrationSections() });
    const ids = [...html.matchAll(/<section id="([a-z]+)"/g)].map((m) => m[1]);
    assert.deepEqual(ids, ["summary", "migration", "layers", "gpus", "placement", "heatmap"]);
    assert.match(html, new RegExp(`${model.migration?.slotsChanged} of 160 \\(`));
    // The busiest receiver: most copies from other GPUs into one GPU.
    const v = model.migration;
    assert.ok(v);
    const remote = Array.from(
      { length: 8 },
      (_, g) => v.perGpu.incoming[8 + g] + v.perGpu.incoming[16 + g],
    );
    const most = Math.max(...remote);
    assert.match(
      html,
      new RegExp(
        `Most weights copied into one GPU \\(from another GPU\\)</th><td>${most} \\(GPU ${remote.indexOf(most)}\\)`,
      ),
    );
    const grid = /<svg[^>]*class="chart placement-grid"[^>]*data-moved="(\d+)"/.exec(html);
    assert.ok(grid);
    assert.equal(Number(grid[1]), model.migration?.changedPerLayer[0]);
    // Without a previous placement nothing of it shows.
    const plain = htmlReport(buildReportModel({ loads: second, placement: next, numGpus: 8 }));
    assert.doesNotMatch(plain, /data-moved|id="migration"/);
  });
});

describe("svgPlacementGrid with the previous slots", () => {
  it("outlines exactly the changed slots and says what they held", () => {
    const svg = svgPlacementGrid(0, [0, 1, 2, 0], {
      numExperts: 3,
      numGpus: 2,
      previousSlots: [0, 2, 2, 1],
    });
    assert.match(svg, /data-moved="2"/);
    assert.equal([...svg.matchAll(/<rect class="moved"/g)].length, 2);
    assert.match(svg, /expert 1; new here \(held expert 2 before\)/);
    assert.match(svg, /expert 0; new here \(held expert 1 before\)/);
    assert.match(svg, /slot changed \(a weight transfer\)/);
    assert.throws(
      () => svgPlacementGrid(0, [0, 1, 2, 0], { numExperts: 3, numGpus: 2, previousSlots: [0] }),
      /previousSlots\.length \(1\) must equal the layer's slots \(4\)/,
    );
  });
});

describe("eplb report --previous", () => {
  const tmp = mkdtempSync(join(tmpdir(), "eplb-report-previous-"));
  const loads1 = join(tmp, "loads1.json");
  const loads2 = join(tmp, "loads2.json");
  writeFileSync(loads1, JSON.stringify(matrixToArrays(first)));
  writeFileSync(loads2, JSON.stringify(matrixToArrays(second)));
  const shape = ["--replicas", "40", "--groups", "4", "--nodes", "2", "--gpus", "8"];

  it("rebalances from the previous placement as eplb plan --previous does, and shows the move", async () => {
    const init = join(tmp, "init.json");
    assert.equal((await cli(["plan", "--loads", loads1, ...shape, "--out", init])).code, 0);
    const plan = await cli(["plan", "--loads", loads2, ...shape, "--previous", init]);
    assert.equal(plan.code, 0, plan.stderr);
    const planned = JSON.parse(plan.stdout);
    const html = join(tmp, "moves.html");
    const r = await cli([
      "report",
      "--loads",
      loads2,
      ...shape,
      "--previous",
      init,
      "--html",
      html,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const changed = planned.metrics.migration.slotsChanged;
    assert.match(r.stderr, new RegExp(`${changed} of 160 slots changed`));
    const page = readFileSync(html, "utf8");
    assert.match(page, /<section id="migration"/);
    assert.match(page, /previous placement: /);
    const t = planned.metrics.migration.transfers;
    assert.match(page, new RegExp(`from another node</th><td>${t.interNode}<`));
    // The placement it reports is the one eplb plan --previous writes.
    const same = await cli([
      "report",
      "--loads",
      loads2,
      "--placement",
      init,
      "--previous",
      init,
      "--html",
      join(tmp, "same.html"),
    ]);
    assert.equal(same.code, 0, same.stderr);
    assert.match(same.stderr, /0 of 160 slots changed/);
  });

  it("a previous placement of another shape is one line and exit 2", async () => {
    const wrong = join(tmp, "wrong.json");
    writeFileSync(wrong, JSON.stringify({ phy2log: [[0, 1, 2, 3]] }));
    const r = await cli([
      "report",
      "--loads",
      loads2,
      ...shape,
      "--previous",
      wrong,
      "--html",
      join(tmp, "x.html"),
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr.trim().split("\n").length, 1);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });
});
