import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { readNpy } from "../../src/io/npy.js";
import { cli } from "../helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-locality-"));

describe("eplb synth --routing and eplb plan --routing", () => {
  test("synthetic routing written, then planned with: fewer remote nodes, balancedness shown", async () => {
    const routing = join(tmp, "routing.npy");
    const w = await cli(
      "synth --routing ROUTING --tokens 4000 --layers 2 --experts 32 --k 4 --seed 2"
        .split(" ")
        .map((a) => (a === "ROUTING" ? routing : a)),
    );
    assert.equal(w.code, 0, w.stderr);
    assert.match(w.stdout, /wrote .*routing\.npy \[4000, 2, 4\] int64 routing\nSYNTHETIC routing/);
    const t = readNpy(readFileSync(routing), routing);
    assert.deepEqual(t.shape, [4000, 2, 4]);
    const loads = [new Array(32).fill(0), new Array(32).fill(0)];
    for (let i = 0; i < t.data.length; i++) loads[Math.floor(i / 4) % 2][Number(t.data[i])]++;
    const loadsPath = join(tmp, "loads.json");
    writeFileSync(loadsPath, JSON.stringify(loads));
    const base = [
      "plan",
      "--loads",
      loadsPath,
      "--replicas",
      "40",
      "--gpus",
      "8",
      "--nodes",
      "4",
      "--routing",
      routing,
    ];
    const p = await cli(base);
    assert.equal(p.code, 0, p.stderr);
    const m = /remote nodes per token ([\d.]+) -> ([\d.]+)/.exec(p.stderr);
    assert.ok(m, p.stderr);
    assert.ok(Number(m[2]) < Number(m[1]), p.stderr);
    const json = JSON.parse(p.stdout);
    assert.ok(
      json.metrics.localityPlan.local.remoteNodesPerToken <
        json.metrics.localityPlan.unlocalized.remoteNodesPerToken,
    );
    assert.equal(json.metrics.localityPlan.tolerance, 0.005);
    const zero = await cli([...base, "--locality-tolerance", "0"]);
    assert.equal(zero.code, 0, zero.stderr);
    assert.equal(JSON.parse(zero.stdout).metrics.localityPlan.tolerance, 0);
    const bad = await cli([...base, "--locality-tolerance", "2"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--locality-tolerance/);
    const noRouting = await cli([...base.slice(0, 9), "--locality-tolerance", "0.01"]);
    assert.equal(noRouting.code, 2);
    assert.match(noRouting.stderr, /--locality-tolerance needs --routing/);
    // From a previous plan made without routing: the migrated plan made local, priced in moves.
    const previous = join(tmp, "previous.json");
    writeFileSync(previous, (await cli(base.slice(0, 9))).stdout);
    const fromPrevious = [...base, "--previous", previous, "--move-budget", "0.5"];
    const moved = await cli(fromPrevious);
    assert.equal(moved.code, 0, moved.stderr);
    const mm = JSON.parse(moved.stdout);
    const lp = mm.metrics.localityPlan;
    assert.equal(lp.fromPrevious.localityGain, 0.005);
    assert.ok(lp.local.remoteNodesPerToken < lp.unlocalized.remoteNodesPerToken, moved.stderr);
    assert.equal(lp.fromPrevious.localSlotsChanged, mm.metrics.migration.slotsChanged);
    assert.equal(mm.transfers.length, mm.metrics.migration.slotsChanged);
    assert.ok(lp.fromPrevious.localSlotsChanged <= 2 * 20, moved.stderr);
    assert.match(
      moved.stderr,
      /locality from previous \(--routing, gain 0.005 per slot, tolerance 0.005\): remote nodes per token previous [\d.]+, migrated [\d.]+, final [\d.]+ \(-[\d.]+% against migrated\); slots changed \d+ -> \d+/,
    );
    assert.doesNotMatch(moved.stderr, /warning/);
    const dear = await cli([...fromPrevious, "--locality-gain", "1000"]);
    const dl = JSON.parse(dear.stdout).metrics.localityPlan;
    assert.equal(dl.fromPrevious.localityGain, 1000);
    assert.deepEqual(dl.local, dl.unlocalized);
    const noPrevious = await cli([...base, "--locality-gain", "0.01"]);
    assert.equal(noPrevious.code, 2);
    assert.match(noPrevious.stderr, /--locality-gain needs --previous/);
    const html = join(tmp, "report.html");
    const report = await cli(["report", ...base.slice(1), "--previous", previous, "--html", html]);
    assert.equal(report.code, 0, report.stderr);
    assert.match(report.stderr, /from the previous placement .*: [1-9]\d* of 80 slots changed/);
    const badK = await cli([
      "synth",
      "--routing",
      routing,
      "--tokens",
      "5",
      "--layers",
      "1",
      "--experts",
      "4",
      "--k",
      "5",
    ]);
    assert.equal(badK.code, 2);
    assert.match(badK.stderr, /k \(5\) must be an integer in 1 \.\. 4/);
  });

  test("under a strict hierarchy the plan is unchanged and the summary says why", async () => {
    const dumps = "test/fixtures/engines/sglang/per_token";
    const args = [
      "plan",
      "--loads",
      dumps,
      "--routing",
      dumps,
      "--replicas",
      "20",
      "--groups",
      "4",
      "--nodes",
      "2",
      "--gpus",
      "4",
    ];
    const strict = await cli(args);
    assert.equal(strict.code, 0, strict.stderr);
    assert.match(
      strict.stderr,
      /under the strict hierarchy groups fix each expert's node, so the plan is unchanged/,
    );
    const m = JSON.parse(strict.stdout).metrics.localityPlan;
    assert.equal(m.locality, "strict");
    assert.deepEqual(m.local, m.unlocalized);
    const relaxed = await cli([...args, "--relaxed"]);
    assert.equal(JSON.parse(relaxed.stdout).metrics.localityPlan.locality, "relaxed");
    assert.match(relaxed.stderr, /locality \(--routing, tolerance 0.005\): remote nodes per token/);
  });
});
