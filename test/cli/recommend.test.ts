/**
 * src/cli/recommend.ts: `eplb simulate --recommend` as printed: the interval/slot lists, the
 * table, the verdict and the JSON, read off hand-made rows (the priced sweep itself is
 * test/pipeline/recommend.test.ts's; whole runs are test/cli/simulate-cost.test.ts's).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CliContext } from "../../src/cli/command.js";
import { UsageError } from "../../src/cli/command.js";
import {
  formatRecommendation,
  integerList,
  recommendationJson,
  recommendationVerdict,
  recommendTrace,
} from "../../src/cli/recommend.js";
import { formatMs, speedup } from "../../src/cli/simulate-cost.js";
import { makeCostModel } from "../../src/core/cost/model.js";
import { synthesizeTrace } from "../../src/core/traces/synth.js";
import type { Recommendation, RecommendRow } from "../../src/pipeline/recommend.js";
import type { PlainConfig, SweepRow } from "../../src/pipeline/sweep.js";
import { assertRefused } from "../helpers/refused.js";
import { smallSimulation } from "../helpers/small-cases.js";

/** A setup's figures: eplb's total, no balancing's, the first placement kept's, deepseek's. */
function setup(
  interval: number,
  replicas: number,
  ms: { total: number; none: number; kept: number; ds?: number; done?: number },
): RecommendRow {
  const ds = ms.ds ?? ms.none;
  return {
    interval,
    replicas,
    totalMs: ms.total,
    noneTotalMs: ms.none,
    staticTotalMs: ms.kept,
    deepseekTotalMs: ds,
    speedupVsNone: ms.none / ms.total,
    speedupVsDeepseek: ds / ms.total,
    speedupVsStatic: ms.kept / ms.total,
    rebalances: 4,
    rebalancesDone: ms.done ?? 4,
    pays: ms.total < ms.kept,
    row: {
      meanRealizedBalancedness: 0.91234,
      movedSlotsPerRebalance: 3,
      cost: { moeMsPerStep: 1.5, transferMsPerRebalance: 2.25 },
    } as unknown as SweepRow,
  };
}

/** Rebalancing pays with 24 slots from every 50 steps on; never with 32. */
const paying: Recommendation = (() => {
  const rows = [
    setup(10, 24, { total: 120, none: 150, kept: 110 }),
    setup(50, 24, { total: 100, none: 150, kept: 110, ds: 130 }),
    setup(10, 32, { total: 140, none: 150, kept: 130 }),
    setup(50, 32, { total: 135, none: 150, kept: 130 }),
  ];
  return {
    rows,
    best: rows[1],
    breakEven: [
      { replicas: 24, interval: 50 },
      { replicas: 32, interval: null },
    ],
    pays: true,
  };
})();

function notPaying(done: number, kept: number): Recommendation {
  const rows = [
    setup(10, 24, { total: 120, none: 150, kept, done }),
    setup(100, 24, { total: 118, none: 150, kept, done }),
  ];
  return { rows, best: rows[1], breakEven: [{ replicas: 24, interval: null }], pays: false };
}

describe("integerList", () => {
  test("one integer or a list, duplicates dropped, order kept; absent: undefined", () => {
    assert.equal(integerList({}, "interval"), undefined);
    assert.deepEqual(integerList({ interval: "50" }, "interval"), [50]);
    assert.deepEqual(integerList({ replicas: "288, 320,288" }, "replicas"), [288, 320]);
  });

  test("anything but integers >= 1 refused in one line naming the flag and the value", () => {
    for (const v of ["0", "x", "", "1.5", "50,", "-5", "1e3"]) {
      assertRefused(
        () => integerList({ interval: v }, "interval"),
        UsageError,
        `--interval (${JSON.stringify(v)}) must be an integer >= 1 or a list of them, as in 50,100`,
      );
    }
    assertRefused(
      () => integerList({ replicas: true }, "replicas"),
      UsageError,
      /^--replicas \(true\)/,
    );
  });
});

describe("recommendationVerdict", () => {
  test("when it pays: the best setup with its figures, then each slot count's break-even", () => {
    const b = paying.best;
    assert.deepEqual(recommendationVerdict(paying), [
      `Recommended: rebalance every 50 steps with 24 slots: ${formatMs(b.totalMs)} ms over the judged steps, ${speedup(110, 100)} faster than keeping its first placement, ${speedup(150, 100)} than no balancing, ${speedup(130, 100)} than deepseek re-planning at that interval.`,
      "Break-even with 24 slots: rebalancing beats keeping the first placement from every 50 steps on.",
      "With 32 slots rebalancing does not pay at any interval tried.",
    ]);
  });

  test("a break-even at the shortest interval tried says so", () => {
    const rec = { ...paying, breakEven: [{ replicas: 24, interval: 10 }] };
    assert.match(
      recommendationVerdict(rec)[1],
      /from every 10 steps on \(already at the shortest interval tried\)\.$/,
    );
  });

  test("when it does not pay: why (the gate, or slower), and what to do instead", () => {
    const gated = recommendationVerdict(notPaying(0, 110));
    assert.equal(gated.length, 2);
    assert.match(
      gated[0],
      /^Rebalancing does NOT pay at any interval tried \(10, 100 steps\): the gate skipped every rebalance/,
    );
    assert.match(
      gated[1],
      /^Deploy a balanced placement and keep it .* or rebalance less often than every 100 steps\.$/,
    );
    const slower = recommendationVerdict(notPaying(3, 110));
    assert.match(
      slower[0],
      /: at every interval eplb took at least as long as its first placement kept/,
    );
    // The gate skipped every rebalance at one interval only: not the gate's doing.
    const mixed = notPaying(0, 110);
    mixed.rows[1] = { ...mixed.rows[1], rebalancesDone: 2 };
    assert.match(recommendationVerdict(mixed)[0], /: at every interval eplb took at least as long/);
    // Kept is no faster than no balancing: balancing itself does not pay.
    const useless = recommendationVerdict(notPaying(3, 150));
    assert.match(useless[1], /^Balancing does not pay here either/);
  });
});

describe("formatRecommendation and recommendationJson", () => {
  test("the table has a line per setup with its figures, then the verdict", () => {
    const text = formatRecommendation(paying, "trace.npy");
    const lines = text.split("\n");
    assert.equal(lines[0], "eplb simulate --recommend: trace.npy, 4 setups");
    const rows = lines.filter((l) => /^\s*\d+\s+\d+\s+0\.9123/.test(l));
    assert.equal(rows.length, 4);
    assert.deepEqual(
      rows.map((l) => l.trim().split(/\s+/).at(-1)),
      ["no", "yes", "no", "no"],
    );
    assert.match(
      rows[1],
      /^\s*50\s+24\s+0\.9123\s+3\s+4\/4\s+1\.500\s+2\.250\s+100\.0\s+110\.0\s+1\.10x\s+1\.50x\s+1\.30x\s+yes$/,
    );
    assert.ok(text.endsWith(`${recommendationVerdict(paying).join("\n")}\n`));
  });

  test("the JSON: recommended only when it pays, the verdict in one string, every setup with its row", () => {
    const json = recommendationJson(paying);
    assert.equal(json.pays, true);
    assert.deepEqual(json.recommended, json.best);
    assert.equal((json.best as { interval: number }).interval, 50);
    assert.equal(json.verdict, recommendationVerdict(paying).join(" "));
    const setups = json.setups as Array<{ speedupVsNone: number; row: unknown }>;
    assert.equal(setups.length, 4);
    assert.equal(setups[0].speedupVsNone, 1.25);
    assert.equal(setups[2].speedupVsNone, 1.07143, "six significant digits");
    assert.equal(setups[0].row, paying.rows[0].row);
    const no = recommendationJson(notPaying(0, 110));
    assert.equal(no.recommended, null);
    assert.equal(no.pays, false);
    assert.deepEqual(no.breakEven, [{ replicas: 24, interval: null }]);
  });
});

describe("recommendTrace: refusals before any replay", () => {
  const trace = synthesizeTrace({ steps: 8, layers: 1, experts: 8, seed: 4 });
  const cost = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });
  const ctx: CliContext = { stdout: () => {}, stderr: () => {}, stderrIsTTY: false, cwd: "." };
  const progress = { update: () => {}, done: () => {} };
  const run = (flags: Record<string, unknown>, config: PlainConfig) =>
    recommendTrace("t.npy", trace, flags as never, ctx, 1, () => config, progress);

  test("--no-baselines, too short a trace, no cost model: one line each", async () => {
    await assert.rejects(
      run({ "no-baselines": true }, { ...smallSimulation, cost }),
      (e) =>
        e instanceof UsageError &&
        e.message === "--recommend compares with no balancing: drop --no-baselines",
    );
    await assert.rejects(
      run({}, { ...smallSimulation, cost }),
      (e) =>
        e instanceof UsageError &&
        /^--recommend: the trace's 8 steps are too few for any interval tried \(.*\); give --interval$/.test(
          e.message,
        ),
    );
    await assert.rejects(
      run({ interval: "10" }, smallSimulation),
      (e) => e instanceof UsageError && /^--recommend needs cost flags: /.test(e.message),
    );
  });
});
