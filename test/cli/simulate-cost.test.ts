// `eplb simulate` with cost flags: the priced table and JSON, the gate's report, --recommend,
// and the HTML report's cumulative time.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { synthesizeTrace } from "../../src/index.js";
import { writeNpy } from "../../src/io/npy-write.js";
import { cli } from "../helpers/cli.js";
import { FLIP_ROWS } from "../helpers/priced-flip.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-simulate-cost-"));

/** The flip trace of test/core/cost/price.test.ts: 1 layer, 2 experts, 6 steps. */
const flipPath = join(tmp, "flip.json");
writeFileSync(flipPath, JSON.stringify({ logical_count: FLIP_ROWS }));
// 1 ms per (token, expert) pair, 1 ms per copy (1 MB over 8 Gb/s).
const msFlags = ["--expert-bytes", "1e6", "--link-gbps", "8,8", "--token-us", "1000"];
const flipArgs = [
  "simulate",
  "--trace",
  flipPath,
  "--replicas",
  "4",
  "--gpus",
  "2",
  "--interval",
  "2",
  "--policy",
  "deepseek",
  "--estimator",
  "mean",
];

const synthPath = join(tmp, "synth.npy");
const synth = synthesizeTrace({ steps: 200, layers: 4, experts: 32, seed: 2, drift: 0.03 });
writeNpy(synthPath, synth.data, [synth.steps, synth.layers, synth.experts], "int64");
const synthArgs = [
  "simulate",
  "--trace",
  synthPath,
  "--replicas",
  "48",
  "--groups",
  "4",
  "--nodes",
  "2",
  "--gpus",
  "8",
  "--workers",
  "1",
];
/** Tens of GB per expert over 1 Gb/s: a copy takes 160 s. */
const slowFlags = ["--expert-bytes", "20e9", "--link-gbps", "1,1", "--token-us", "0.05"];
/** DeepSeek-V3-sized experts on 1600 / 400 Gb/s links. */
const ordinaryFlags = ["--expert-bytes", "44e6", "--link-gbps", "1600,400", "--token-us", "0.05"];

describe("eplb simulate with cost flags", () => {
  test("the table gains MoE ms per step, transfer ms per rebalance, total and speed-ups", async () => {
    const r = await cli([...flipArgs, ...msFlags, "--no-cost-gate"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /moe ms\/step +transfer ms\/rebalance +total ms +vs none +vs deepseek/);
    // eplb: (10/3 + 10/3 + 2 + 2) ms of MoE time and one 1 ms stall = 11.667 ms; none 12 ms.
    assert.match(
      r.stdout,
      /eplb \(deepseek, from previous\).* 2\.667 +1\.000 +11\.7 +1\.03x +1\.00x/,
    );
    assert.match(
      r.stdout,
      /no balancing \(experts in order\).* 3\.000 +0\.000 +12\.0 +1\.00x +0\.97x/,
    );
    assert.match(r.stdout, /gate: off/);
  });

  test("JSON gains cost for eplb and every baseline, only with cost flags", async () => {
    const priced = JSON.parse((await cli([...flipArgs, ...msFlags, "--json"])).stdout);
    for (const s of [
      priced,
      priced.baselines.none,
      priced.baselines.deepseek,
      priced.baselines.oracle,
    ]) {
      assert.deepEqual(
        Object.keys(s.cost).filter((k) => !k.startsWith("skipped")),
        ["moeMsPerStep", "transferMsPerRebalance", "totalMs"],
      );
    }
    assert.equal(
      priced.cost.totalMs,
      4 * priced.cost.moeMsPerStep + priced.cost.transferMsPerRebalance,
    );
    assert.equal(priced.baselines.none.cost.totalMs, 12);
    assert.equal(priced.baselines.oracle.cost.totalMs, 8);
    assert.equal(typeof priced.cost.skippedRebalances, "number");
    assert.equal(priced.config.cost.expertBytes, 1e6);
    assert.deepEqual(priced.series.transferMs.eplb.length, 2);
    const plain = JSON.parse((await cli([...flipArgs, "--json"])).stdout);
    assert.equal("cost" in plain, false);
    assert.equal("cost" in plain.baselines.none, false);
    assert.equal("cost" in plain.config, false);
    assert.equal("transferMs" in plain.series, false);
  });

  test("tens of GB per expert over 1 Gb/s every 10 steps: reported as a loss", async () => {
    const r = await cli([...synthArgs, "--interval", "10", ...slowFlags, "--no-cost-gate"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /eplb LOSES to no balancing/);
    assert.match(r.stdout, /deepseek re-planning LOSES to no balancing here/);
    // With the gate, eplb skips every rebalance after the first, and says so.
    const gated = await cli([...synthArgs, "--interval", "10", ...slowFlags]);
    assert.match(gated.stdout, /gate: eplb skipped 18 of 18 rebalances after the first/);
  });

  test("ordinary links: rebalancing is reported as a gain", async () => {
    const r = await cli([...synthArgs, "--interval", "10", ...ordinaryFlags]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /eplb: \d+\.\d\dx faster than no balancing/);
    assert.doesNotMatch(r.stdout, /LOSES/);
  });

  test("--recommend says plainly when rebalancing does not pay", async () => {
    const r = await cli([...synthArgs, "--interval", "10,50", ...slowFlags, "--recommend"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /Rebalancing does NOT pay at any interval tried \(10, 50 steps\)/);
    const json = JSON.parse(
      (
        await cli([
          ...synthArgs,
          "--interval",
          "10,50",
          ...slowFlags,
          "--recommend",
          "--json",
          "--no-cost-gate",
        ])
      ).stdout,
    );
    assert.equal(json.pays, false);
    assert.equal(json.recommended, null);
    assert.deepEqual(json.breakEven, [{ replicas: 48, interval: null }]);
    // Ungated, every rebalance stalls for minutes: slower than its first placement kept, and
    // than no balancing at all.
    for (const s of json.setups)
      assert.ok(s.totalMs > s.staticTotalMs && s.totalMs > s.noneTotalMs);
  });

  test("--recommend with ordinary links: the best setup and the break-even interval", async () => {
    const r = await cli([
      ...synthArgs.map((a) => (a === "48" ? "40,48" : a)),
      "--interval",
      "10,25,50",
      ...ordinaryFlags,
      "--recommend",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.pays, true);
    assert.equal(json.setups.length, 6);
    assert.deepEqual(
      json.setups.map((s: { replicas: number; interval: number }) => [s.replicas, s.interval]),
      [
        [40, 10],
        [40, 25],
        [40, 50],
        [48, 10],
        [48, 25],
        [48, 50],
      ],
    );
    const best = json.recommended;
    for (const s of json.setups) assert.ok(s.speedupVsNone <= best.speedupVsNone);
    for (const { replicas, interval } of json.breakEven) {
      const paying = json.setups.filter(
        (s: { replicas: number; pays: boolean }) => s.replicas === replicas && s.pays,
      );
      assert.equal(
        interval,
        paying.length ? Math.min(...paying.map((s: { interval: number }) => s.interval)) : null,
      );
    }
    const text = await cli([
      ...synthArgs,
      "--interval",
      "10,25,50",
      ...ordinaryFlags,
      "--recommend",
      "--html",
      join(tmp, "recommend.html"),
    ]);
    assert.match(text.stdout, /Recommended: rebalance every \d+ steps with 48 slots/);
    assert.match(readFileSync(join(tmp, "recommend.html"), "utf8"), /Simulation sweep/);
  });

  test("--sweep with cost flags: the rows' times in the table and the CSV", async () => {
    const sweep = [...synthArgs, "--interval", "10", "--sweep", "interval=10,25", ...ordinaryFlags];
    const table = await cli(sweep);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /total ms +vs none +vs deepseek +pareto/);
    const csv = (await cli([...sweep, "--csv"])).stdout.split("\n");
    assert.match(
      csv[0],
      /,moe_ms_per_step,transfer_ms_per_rebalance,total_ms,none_total_ms,deepseek_total_ms$/,
    );
    const json = JSON.parse((await cli([...sweep, "--json"])).stdout);
    const cols = csv[0].split(",");
    const first = csv[1].split(",");
    assert.equal(
      Number(first[cols.indexOf("total_ms")]),
      Number(json[0].cost.totalMs.toPrecision(6)),
    );
    const plain = await cli([
      ...synthArgs,
      "--interval",
      "10",
      "--sweep",
      "interval=10,25",
      "--csv",
    ]);
    assert.doesNotMatch(plain.stdout, /total_ms/);
  });

  test("mistakes: --recommend without cost flags or with --sweep, --no-cost-gate alone", async () => {
    const noCost = await cli([...synthArgs, "--interval", "10", "--recommend"]);
    assert.equal(noCost.code, 2);
    assert.match(noCost.stderr, /--recommend needs cost flags/);
    const sweep = await cli([
      ...synthArgs,
      "--interval",
      "10",
      ...ordinaryFlags,
      "--recommend",
      "--sweep",
      "interval=10,20",
    ]);
    assert.equal(sweep.code, 2);
    assert.match(sweep.stderr, /drop --sweep/);
    const gate = await cli([...synthArgs, "--interval", "10", "--no-cost-gate"]);
    assert.equal(gate.code, 2);
    assert.match(gate.stderr, /--no-cost-gate needs cost flags/);
    const routed = await cli([
      ...synthArgs,
      "--interval",
      "10",
      ...ordinaryFlags,
      "--recommend",
      "--routing",
      synthPath,
    ]);
    assert.equal(routed.code, 2);
    assert.match(routed.stderr, /--routing judges one run: it cannot be combined with --recommend/);
    const list = await cli([...synthArgs, "--interval", "10,x", ...ordinaryFlags, "--recommend"]);
    assert.equal(list.code, 2);
    assert.match(list.stderr, /--interval \("10,x"\) must be an integer >= 1 or a list of them/);
  });

  test("--html shows cumulative time per strategy with cost flags, not without", async () => {
    const priced = join(tmp, "priced.html");
    const plain = join(tmp, "plain.html");
    assert.equal(
      (await cli([...synthArgs, "--interval", "25", ...ordinaryFlags, "--html", priced])).code,
      0,
    );
    assert.equal((await cli([...synthArgs, "--interval", "25", "--html", plain])).code, 0);
    assert.match(readFileSync(priced, "utf8"), /Cumulative time: MoE time plus rebalancing stalls/);
    assert.doesNotMatch(readFileSync(plain, "utf8"), /Cumulative time/);
  });
});
