import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { lognormalLoads, matrixToArrays, Random } from "../../src/index.js";
import { cli } from "../helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-schedule-"));

function file(name: string, value: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

// 2 nodes x 2 GPUs, 2 slots per GPU. Layer 0 holds expert 0 only on node 0 and it takes all the
// load: two inter-node copies (GPU 0 -> 2, GPU 1 -> 3). Layer 1's hot expert 3 gets three
// intra-node copies (GPU 1 -> 0, GPU 3 -> 2, GPU 2 -> 3).
const small = ["--replicas", "8", "--nodes", "2", "--gpus", "4", "--move-budget", "8"];
const smallPrevious = file("small-previous.json", {
  phy2log: [
    [0, 1, 0, 1, 2, 3, 2, 3],
    [0, 1, 2, 3, 0, 1, 2, 3],
  ],
});
const smallLoads = file("small-loads.json", [
  [100, 1, 1, 1],
  [1, 1, 1, 100],
]);
// 50 MB per expert: 0.25 ms over 1600 Gb/s, 1 ms over 400 Gb/s.
const price = ["--expert-bytes", "50e6", "--link-gbps", "1600,400"];

type Copy = {
  layer: number;
  expert: number;
  sourceGpu: number;
  destinationGpu: number;
  kind: string;
};
/** `eplb plan` on the small case, rebalancing from its previous placement, with more flags. */
const planSmall = (...flags: string[]) =>
  cli(["plan", "--loads", smallLoads, ...small, "--previous", smallPrevious, ...flags]);
const brief = (t: Copy) => `L${t.layer} e${t.expert} ${t.sourceGpu}->${t.destinationGpu} ${t.kind}`;

describe("eplb plan --previous: the transfer schedule", () => {
  test("--transfers holds the rounds, checked by hand: the inter-node copies share one round", async () => {
    const out = join(tmp, "moves.json");
    const r = await planSmall("--transfers", out, ...price);
    assert.equal(r.code, 0, r.stderr);
    const f = JSON.parse(readFileSync(out, "utf8"));
    assert.deepEqual(f.transfers.map(brief), [
      "L0 e0 0->2 interNode",
      "L0 e0 1->3 interNode",
      "L1 e3 1->0 intraNode",
      "L1 e3 3->2 intraNode",
      "L1 e0 2->3 intraNode",
    ]);
    assert.deepEqual(f.local, []);
    // GPU 1 sends 2 and GPUs 2 and 3 receive 2: two rounds. The inter-node copies go first and
    // together (1 ms), the intra-node ones in the other round (0.25 ms).
    assert.deepEqual(
      f.rounds.map((round: Copy[]) => round.map(brief)),
      [
        ["L0 e0 0->2 interNode", "L0 e0 1->3 interNode"],
        ["L1 e3 1->0 intraNode", "L1 e3 3->2 intraNode", "L1 e0 2->3 intraNode"],
      ],
    );
    assert.deepEqual(f.roundMs, [1, 0.25]);
    assert.equal(f.estimatedMs, 1.25);
    assert.deepEqual(JSON.parse(r.stdout).metrics.schedule, { rounds: 2, estimatedMs: 1.25 });
    assert.match(
      r.stderr,
      /\n {2}transfer schedule: 2 rounds \(each GPU sends and receives at most one expert per round\); estimated 1\.3 ms\n/,
    );
  });

  test("without cost flags: rounds, no time; --chunk-layers 1 orders rounds layer by layer", async () => {
    const out = join(tmp, "moves-chunked.json");
    const r = await planSmall("--transfers", out, "--chunk-layers", "1");
    assert.equal(r.code, 0, r.stderr);
    const f = JSON.parse(readFileSync(out, "utf8"));
    assert.equal(f.estimatedMs, undefined);
    assert.equal(f.layerChunk, 1);
    assert.deepEqual(
      f.rounds.map((round: Copy[]) => round.map((t) => t.layer)),
      [
        [0, 0],
        [1, 1, 1],
      ],
    );
    assert.match(
      r.stderr,
      /transfer schedule: 2 rounds in chunks of 1 layers \(each GPU sends and receives at most one expert per round\)\n/,
    );
  });

  test("cost flags without --transfers still print the estimate; presets work", async () => {
    const r = await planSmall("--model", "qwen3-235b-a22b", "--hardware", "h100");
    assert.equal(r.code, 0, r.stderr);
    // 37,748,736 bytes: 0.755 ms at 400 Gb/s, 0.0839 ms at 3600 Gb/s.
    const ms = ((37_748_736 * 8) / 400e9) * 1e3 + ((37_748_736 * 8) / 3600e9) * 1e3;
    assert.ok(Math.abs(JSON.parse(r.stdout).metrics.schedule.estimatedMs - ms) < 1e-9);
    assert.match(r.stderr, /estimated 0\.8 ms/);
    // 2 GPUs per node here, 8 in the preset: said, not refused.
    assert.match(
      r.stderr,
      /^warning: --hardware h100 describes nodes of 8 GPUs, but --gpus \/ --nodes gives 2 per node: copies between GPUs of one topology node are priced at NVLink speed\n/,
    );
  });

  const refusals: Array<[string[], RegExp]> = [
    [["--model", "deepseek-v3", "--hardware", "h800"], /^eplb plan: --model needs --previous\n$/],
    [["--chunk-layers", "2"], /^eplb plan: --chunk-layers needs --previous\n$/],
  ];
  for (const [flags, message] of refusals) {
    test(`refused without --previous: ${flags[0]}`, async () => {
      const r = await cli([
        "plan",
        "--loads",
        smallLoads,
        "--replicas",
        "8",
        "--gpus",
        "4",
        ...flags,
      ]);
      assert.equal(r.code, 2);
      assert.match(r.stderr, message);
    });
  }

  test("a time budget needs the cost flags; bad budgets and chunks are refused in one line", async () => {
    const base = ["plan", "--loads", smallLoads, ...small.slice(0, 6), "--previous", smallPrevious];
    let r = await cli([...base, "--move-budget", "150ms"]);
    assert.equal(r.code, 2);
    assert.equal(
      r.stderr,
      "eplb plan: --move-budget 150ms is a time: it needs the cost flags (--model or --expert-bytes, with --hardware or --link-gbps)\n",
    );
    r = await cli([...base, "--move-budget", "150us", ...price]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /--move-budget \("150us"\) must be slots per layer \(an integer >= 0\), a fraction in \(0, 1\) or a time \(150ms, 0\.2s\)/,
    );
    r = await cli([...base, "--chunk-layers", "0"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--chunk-layers \("0"\) must be an integer >= 1/);
    r = await cli([...base, "--model", "deepseek-v3"]);
    assert.equal(r.stderr, "eplb plan: --link-gbps or --hardware is needed with --model\n");
  });

  test("--move-budget in time: the schedule fits the budget, and one more slot per layer would not", async () => {
    const shape = ["--replicas", "40", "--groups", "4", "--nodes", "2", "--gpus", "8"];
    const first = lognormalLoads(6, 32, 1, 5);
    const rng = new Random(8);
    const second = { ...first, data: first.data.map((v) => v * rng.lognormal(0.3)) };
    const loads1 = file("loads1.json", matrixToArrays(first));
    const loads2 = file("loads2.json", matrixToArrays(second));
    const p = await cli(["plan", "--loads", loads1, ...shape]);
    const previous = file("previous.json", { phy2log: JSON.parse(p.stdout).phy2log });
    const run = async (budget: string) => {
      const r = await cli([
        "plan",
        "--loads",
        loads2,
        ...shape,
        "--previous",
        previous,
        ...price,
        "--move-budget",
        budget,
      ]);
      assert.equal(r.code, 0, r.stderr);
      const m = JSON.parse(r.stdout).metrics;
      return {
        ms: m.schedule.estimatedMs as number,
        slots: m.migration.moveBudget as number,
        schedule: m.schedule,
        stderr: r.stderr,
      };
    };
    const unlimited = await run("40");
    assert.ok(unlimited.ms > 2, `the unlimited rebalance takes time (${unlimited.ms} ms)`);
    for (const budgetMs of [1, unlimited.ms / 2, unlimited.ms * 0.8]) {
      const timed = await run(`${budgetMs}ms`);
      assert.ok(timed.ms <= budgetMs, `${timed.ms} ms within ${budgetMs} ms`);
      assert.ok(timed.slots < 40);
      const more = await run(String(timed.slots + 1));
      assert.ok(
        more.ms > budgetMs,
        `one more slot per layer (${timed.slots + 1}) takes ${more.ms} ms > ${budgetMs} ms`,
      );
      assert.equal(timed.schedule.moveBudgetMs, budgetMs);
      assert.match(
        timed.stderr,
        /\(move budget [\d.]+ ms: the largest slot budget that fits, \d+ plans tried\)/,
      );
    }
    const roomy = await run(`${unlimited.ms * 2}ms`);
    assert.equal(roomy.slots, 40, "a budget the whole rebalance fits in leaves the slots uncapped");
    assert.equal(roomy.ms, unlimited.ms);
  });
});
