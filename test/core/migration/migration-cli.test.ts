import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { lognormalLoads, matrixToArrays, Random } from "../../../src/index.js";
import { cli } from "../../helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-migration-"));
const shape = ["--replicas", "40", "--groups", "4", "--nodes", "2", "--gpus", "8"];

function file(name: string, value: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
  return path;
}

// Two load windows of a 4-layer, 32-expert model, the second drifted by 5%.
const first = lognormalLoads(4, 32, 1, 5);
const rng = new Random(6);
const second = matrixToArrays({
  ...first,
  data: first.data.map((v) => v * rng.lognormal(0.05)),
});
const loads1 = file("loads1.json", matrixToArrays(first));
const loads2 = file("loads2.json", second);

async function previousPlan(): Promise<{ phy2log: number[][]; path: string }> {
  const r = await cli(["plan", "--loads", loads1, ...shape]);
  assert.equal(r.code, 0, r.stderr);
  const { phy2log } = JSON.parse(r.stdout);
  return { phy2log, path: file("previous.json", { phy2log }) };
}

describe("eplb plan --previous", () => {
  test("writes transfers and migration metrics, and the summary line with transfer kinds", async () => {
    const previous = await previousPlan();
    const r = await cli(["plan", "--loads", loads2, ...shape, "--previous", previous.path]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    const m = out.metrics.migration;
    let changed = 0;
    for (let l = 0; l < 4; l++) {
      for (let s = 0; s < 40; s++) if (out.phy2log[l][s] !== previous.phy2log[l][s]) changed++;
    }
    assert.equal(m.slotsChanged, changed);
    assert.equal(out.transfers.length, changed);
    assert.equal(m.transfers.local + m.transfers.intraNode + m.transfers.interNode, changed);
    for (const t of out.transfers) {
      assert.equal(previous.phy2log[t.layer][t.source], t.expert);
      assert.equal(out.phy2log[t.layer][t.destination], t.expert);
      assert.ok(["local", "intraNode", "interNode"].includes(t.kind));
    }
    assert.ok(m.freshSlotsChanged > changed, "a fresh plan moves more");
    // The busiest receiver, from the transfer list: copies from other GPUs into one GPU.
    const into = new Map<number, number>();
    for (const t of out.transfers) {
      if (t.kind !== "local") into.set(t.destinationGpu, (into.get(t.destinationGpu) ?? 0) + 1);
    }
    const from = new Map<number, number>();
    for (const t of out.transfers) {
      if (t.kind !== "local") from.set(t.sourceGpu, (from.get(t.sourceGpu) ?? 0) + 1);
    }
    assert.equal(m.maxGpuTransfersIn, Math.max(0, ...into.values()));
    assert.equal(m.maxGpuTransfersOut, Math.max(0, ...from.values()));
    assert.ok(m.maxGpuTransfersIn > 0);
    assert.match(
      r.stderr,
      new RegExp(
        `from previous: ${changed} of 160 slots changed \\(.*%\\): ${m.transfers.local} local, ${m.transfers.intraNode} intra-node, ${m.transfers.interNode} inter-node \\(busiest GPU receives ${m.maxGpuTransfersIn}, sends ${m.maxGpuTransfersOut}\\)`,
      ),
    );
  });

  test("--move-budget 0 returns the previous placement unchanged", async () => {
    const previous = await previousPlan();
    const r = await cli([
      "plan",
      "--loads",
      loads2,
      ...shape,
      "--previous",
      previous.path,
      "--move-budget",
      "0",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.phy2log, previous.phy2log);
    assert.deepEqual(out.transfers, []);
  });

  test("reads an SGLang placement and writes the transfer plan beside an engine file", async () => {
    const previous = await previousPlan();
    const sglang = file("init.json", { physical_to_logical_map: previous.phy2log });
    const moves = join(tmp, "moves.json");
    const next = join(tmp, "next.json");
    const r = await cli([
      "plan",
      "--loads",
      loads2,
      ...shape,
      "--previous",
      sglang,
      "--output-format",
      "sglang",
      "--out",
      next,
      "--transfers",
      moves,
      "--move-budget",
      "0.1",
      "--min-gain",
      "0",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const placed = JSON.parse(readFileSync(next, "utf8")).physical_to_logical_map;
    const { transfers } = JSON.parse(readFileSync(moves, "utf8"));
    let changed = 0;
    for (let l = 0; l < 4; l++) {
      let layer = 0;
      for (let s = 0; s < 40; s++) if (placed[l][s] !== previous.phy2log[l][s]) layer++;
      assert.ok(layer <= 4, `layer ${l}: ${layer} slots changed, budget 4`);
      changed += layer;
    }
    assert.equal(transfers.length, changed);
  });

  const mistakes: [string, string[], RegExp][] = [
    [
      "a previous placement of another slot count",
      ["--replicas", "48"],
      /previous\.numReplicas \(40\) must equal numReplicas \(48\)/,
    ],
    [
      "a bad move budget",
      ["--move-budget", "1.5"],
      /--move-budget \("1\.5"\) must be slots per layer/,
    ],
    ["a min gain of 1", ["--min-gain", "1"], /--min-gain \("1"\) must be a number in \[0, 0\.99\]/],
  ];
  for (const [name, extra, message] of mistakes) {
    test(`${name} is one line on stderr and exit code 2`, async () => {
      const previous = await previousPlan();
      const args = ["plan", "--loads", loads2, ...shape, "--previous", previous.path];
      for (let i = 0; i < extra.length; i += 2) {
        const at = args.indexOf(extra[i]);
        if (at >= 0) args[at + 1] = extra[i + 1];
        else args.push(extra[i], extra[i + 1]);
      }
      const r = await cli(args);
      assert.equal(r.code, 2);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr.trim().split("\n").length, 1);
      assert.match(r.stderr, message);
    });
  }

  test("migration flags without --previous are a usage error", async () => {
    const r = await cli(["plan", "--loads", loads2, ...shape, "--min-gain", "0.01"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--min-gain needs --previous/);
    const s = await cli(["plan", "--loads", loads2, ...shape, "--slot-gain", "0.001"]);
    assert.equal(s.code, 2);
    assert.match(s.stderr, /--slot-gain needs --previous/);
  });

  test("--slot-gain reaches the polish: the metrics echo it, and 1 (no polish) moves no more", async () => {
    const previous = await previousPlan();
    const run = async (slotGain: string) => {
      const args = ["plan", "--loads", loads2, ...shape, "--previous", previous.path];
      const r = await cli([...args, "--slot-gain", slotGain]);
      assert.equal(r.code, 0, r.stderr);
      return JSON.parse(r.stdout).metrics.migration;
    };
    const eager = await run("0");
    const off = await run("1");
    assert.equal(eager.slotGain, 0);
    assert.equal(off.slotGain, 1);
    assert.ok(off.slotsChanged <= eager.slotsChanged);
  });

  test("a group spread over two nodes is named in the error", async () => {
    const previous = await previousPlan();
    const broken = previous.phy2log.map((row) => [...row]);
    // Swap a slot of node 0 with one of node 1 in layer 2: their groups now span both nodes.
    [broken[2][0], broken[2][39]] = [broken[2][39], broken[2][0]];
    const r = await cli([
      "plan",
      "--loads",
      loads2,
      ...shape,
      "--previous",
      file("broken.json", { phy2log: broken }),
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /previous\[2\] \("group \d"\) has replicas on nodes 0 and 1/);
  });
});
