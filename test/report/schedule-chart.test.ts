import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { lognormalLoads, Random } from "../../src/core/blocks/random.js";
import { makeCostModel } from "../../src/core/cost/model.js";
import { scheduleTransfers } from "../../src/core/cost/schedule.js";
import { planTransfers } from "../../src/core/evaluation/transfers.js";
import { matrixToArrays } from "../../src/core/model/matrix.js";
import { placementFromPhy2log } from "../../src/core/model/placement.js";
import { makeTopology } from "../../src/core/model/topology.js";
import { planDeepseek } from "../../src/core/policies/deepseek.js";
import { rebalanceExperts } from "../../src/core/rebalance.js";
import { svgTransferRounds } from "../../src/report/schedule-chart.js";
import { cli } from "../helpers/cli.js";

/** The fill of GPU `g`'s cells in the chart, in order. */
function rowFills(svg: string, g: number): string[] {
  const re = new RegExp(`fill="(#[0-9a-f]+)"><title>GPU ${g}, rounds`, "g");
  return Array.from(svg.matchAll(re), (m) => m[1]);
}

describe("svgTransferRounds: rounds by GPUs", () => {
  it("colours each GPU's round by the kind of copy it receives", () => {
    // 2 nodes of 2 GPUs, 2 slots each; which GPU receives what kind of copy is read off the
    // plan below, and the chart must colour each GPU's row accordingly.
    const t = makeTopology(4, 8, 1, 2, 4);
    const previous = placementFromPhy2log([[0, 1, 2, 3, 0, 1, 2, 3]], 4);
    const next = placementFromPhy2log([[0, 2, 2, 3, 0, 3, 1, 1]], 4);
    const plan = planTransfers(previous, next, t);
    const s = scheduleTransfers(plan, t);
    const svg = svgTransferRounds(plan, s, { numGpus: 4, slotsPerGpu: 2, gpusPerNode: 2 });
    assert.match(svg, new RegExp(`data-rounds="${s.rounds}"`));
    // Every GPU row spans all rounds with its cells.
    for (let g = 0; g < 4; g++) assert.ok(rowFills(svg, g).length >= 1);
    // Receivers by kind, from the plan itself.
    const got = new Map<number, number>();
    for (let i = 0; i < plan.count; i++) {
      if (plan.kind[i] === 0) continue;
      const g = Math.floor(plan.destination[i] / 2);
      got.set(g, Math.max(got.get(g) ?? 0, plan.kind[i]));
    }
    for (let g = 0; g < 4; g++) {
      const fills = rowFills(svg, g);
      const k = got.get(g) ?? 0;
      if (k === 2) assert.ok(fills.includes("#e08214"), `GPU ${g}: ${fills}`);
      else if (k === 1) assert.ok(fills.includes("#2166ac"), `GPU ${g}: ${fills}`);
      else assert.deepEqual(fills, ["#eeeeee"]);
    }
  });

  it("a re-plan's hundreds of rounds fold into at most 240 columns", () => {
    const t = makeTopology(256, 288, 8, 4, 32);
    const a = planDeepseek(lognormalLoads(58, 256, 1, 3), t);
    const b = planDeepseek(lognormalLoads(58, 256, 1, 4), t);
    const plan = planTransfers(a, b, t);
    const m = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0 });
    const s = scheduleTransfers(plan, t, m);
    assert.ok(s.rounds > 240, String(s.rounds));
    const svg = svgTransferRounds(plan, s, { numGpus: 32, slotsPerGpu: 9, gpusPerNode: 8 });
    const columns = Number(/data-columns="(\d+)"/.exec(svg)?.[1]);
    assert.ok(columns <= 240 && columns >= s.rounds / Math.ceil(s.rounds / 240) - 1);
    assert.ok(svg.length < 400_000, `${svg.length} bytes`);
  });
});

describe("eplb report --previous with cost flags", () => {
  const tmp = mkdtempSync(join(tmpdir(), "eplb-report-schedule-"));
  const first = lognormalLoads(4, 32, 1, 11);
  const rng = new Random(12);
  const second = { ...first, data: first.data.map((v) => v * rng.lognormal(0.2)) };
  const loads1 = join(tmp, "loads1.json");
  const loads2 = join(tmp, "loads2.json");
  writeFileSync(loads1, JSON.stringify(matrixToArrays(first)));
  writeFileSync(loads2, JSON.stringify(matrixToArrays(second)));
  const shape = ["--replicas", "40", "--groups", "4", "--nodes", "2", "--gpus", "8"];
  const cost = ["--expert-bytes", "44e6", "--link-gbps", "1600,400"];

  it("shows the schedule: rounds by GPUs and its estimated time", async () => {
    const init = join(tmp, "init.json");
    assert.equal((await cli(["plan", "--loads", loads1, ...shape, "--out", init])).code, 0);
    const html = join(tmp, "moves.html");
    const args = ["report", "--loads", loads2, ...shape, "--previous", init, "--html", html];
    const r = await cli([...args, ...cost]);
    assert.equal(r.code, 0, r.stderr);
    const page = readFileSync(html, "utf8");
    assert.match(page, /class="chart transfer-rounds"/);
    // The same rounds as scheduling the rebalance eplb plans from the same inputs.
    const previous = rebalanceExperts(first, 40, 4, 2, 8).placement;
    const next = rebalanceExperts(second, 40, 4, 2, 8, { previous }).placement;
    const t = makeTopology(32, 40, 4, 2, 8);
    const s = scheduleTransfers(planTransfers(previous, next, t), t);
    assert.match(page, new RegExp(`${s.rounds} rounds, estimated [0-9.,]+ ms`));
    const plain = join(tmp, "plain.html");
    assert.equal((await cli([...args.slice(0, -1), plain])).code, 0);
    assert.doesNotMatch(readFileSync(plain, "utf8"), /transfer-rounds/);
  });

  it("cost flags without --previous: one line, exit 2", async () => {
    const r = await cli([
      "report",
      "--loads",
      loads2,
      ...shape,
      "--html",
      join(tmp, "x.html"),
      ...cost,
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /give --previous/);
  });
});
