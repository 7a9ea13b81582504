/**
 * src/cli/sweep.ts: `--sweep` flags become a checked grid (every value refused in one line before
 * a replay starts), and the runner's rows print as a table or CSV that say what each row is.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../../src/cli/command.js";
import { formatSweepTable, parseSweeps, sweepCsv, sweepStartLine } from "../../src/cli/sweep.js";
import { simulate } from "../../src/core/traces/simulate.js";
import { makeCostModel, synthesizeTrace } from "../../src/index.js";
import { markParetoFront, type SweepRow, sweepGrid, sweepRow } from "../../src/pipeline/sweep.js";
import { assertRefused } from "../helpers/refused.js";

const usage = (fn: () => unknown, message: RegExp) => assertRefused(fn, UsageError, message);

describe("parseSweeps", () => {
  test("each name's values, trimmed, in the order given", () => {
    assert.deepEqual(
      parseSweeps([
        "interval=50, 100",
        "estimator=mean,ema",
        "previous=yes,no",
        "min-gain=0,.5,1.5,Infinity",
      ]),
      {
        interval: ["50", "100"],
        estimator: ["mean", "ema"],
        previous: ["yes", "no"],
        "min-gain": ["0", ".5", "1.5", "Infinity"],
      },
    );
  });

  test("every bad value is refused naming the flag, the value and the rule", () => {
    const cases: Array<[string, RegExp]> = [
      [
        "gpus=8",
        /^--sweep gpus=8: the name must be one of interval, window, replicas, policy, estimator/,
      ],
      ["interval", /^--sweep interval: give values, as in interval=a,b$/],
      ["interval=,", /give values/],
      ["interval=0", /^--sweep interval=0: "0" must be an integer >= 1$/],
      ["window=1.5", /"1\.5" must be an integer >= 1/],
      ["replicas=-8", /"-8" must be an integer >= 1/],
      ["previous=maybe", /^--sweep previous=maybe: "maybe" must be yes or no$/],
      ["move-budget=-1", /"-1" must be a number >= 0/],
      ["tolerance=1e-3", /"1e-3" must be a number >= 0/],
      ["estimator=median", /estimator "median" must be one of /],
      ["policy=greedy", /policy "greedy" must be one of balanced, deepseek/],
    ];
    for (const [spec, message] of cases) usage(() => parseSweeps([spec]), message);
    usage(() => parseSweeps(["interval=1", "interval=2"]), /^--sweep interval is given twice$/);
  });

  test("a grid over the limit is refused before any replay", () => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => String(i + 1)).join(",");
    assert.doesNotThrow(() => parseSweeps([`interval=${values(100)}`, `window=${values(10)}`]));
    usage(
      () => parseSweeps([`interval=${values(100)}`, `window=${values(11)}`]),
      /^--sweep: the grid has 1100 configurations, more than the 1000 a sweep runs/,
    );
  });
});

// Four real rows: two intervals, from the previous placement or not.
const trace = synthesizeTrace({ steps: 120, layers: 2, experts: 8, seed: 5, drift: 0.03 });
const base = { numReplicas: 12, numGroups: 2, numNodes: 2, numGpus: 4, interval: 10, window: 10 };
const rows: SweepRow[] = markParetoFront(
  sweepGrid(base, { interval: ["10", "40"], previous: ["yes", "no"] }).map((c) =>
    sweepRow(simulate(trace, c)),
  ),
);

describe("sweepCsv", () => {
  test("one header, one line per row, the cells of each row under their header", () => {
    const lines = sweepCsv(rows).split("\n");
    assert.equal(lines.length, rows.length + 2);
    assert.equal(lines.at(-1), "");
    const header = lines[0].split(",");
    rows.forEach((r, i) => {
      const cells = Object.fromEntries(lines[i + 1].split(",").map((c, j) => [header[j], c]));
      assert.equal(cells.interval, String(r.interval));
      assert.equal(cells.from_previous, String(r.fromPrevious));
      assert.equal(Number(cells.balancedness), Number(r.meanRealizedBalancedness.toPrecision(6)));
      assert.equal(cells.pareto, String(r.paretoOptimal));
      assert.equal(cells.move_budget, "");
      assert.ok(!("total_ms" in cells));
    });
  });

  test("priced rows gain the cost columns", () => {
    const cost = makeCostModel({
      expertBytes: 44e6,
      intraGbps: 1600,
      interGbps: 400,
      tokenUs: 0.05,
    });
    const priced = [sweepRow(simulate(trace, { ...base, cost }))];
    const [header, line] = sweepCsv(priced).split("\n");
    assert.ok(
      header.endsWith(
        ",moe_ms_per_step,transfer_ms_per_rebalance,total_ms,none_total_ms,deepseek_total_ms",
      ),
    );
    const cells = line.split(",");
    assert.equal(cells.length, header.split(",").length);
    assert.equal(Number(cells.at(-3)), Number(priced[0].cost?.totalMs.toPrecision(6)));
  });
});

describe("formatSweepTable", () => {
  test("names the trace and the count, marks the Pareto front and explains the mark", () => {
    const text = formatSweepTable(rows, "trace.npy");
    const lines = text.split("\n");
    assert.equal(lines[0], `eplb simulate --sweep: trace.npy, ${rows.length} configurations`);
    assert.match(lines[2], /^interval +window +replicas +policy/);
    assert.equal(
      lines.slice(3, 3 + rows.length).filter((l) => l.endsWith("*")).length,
      rows.filter((r) => r.paretoOptimal).length,
    );
    assert.match(text, /\* = on the Pareto front/);
    assert.doesNotMatch(text, /off node|total ms/);
  });

  test("the off-node column only when a row serves load off its group's node", () => {
    const relaxed = rows.map((r, i) => ({ ...r, offNodeShare: i === 0 ? 0.125 : 0 }));
    const text = formatSweepTable(relaxed, "t");
    assert.match(text.split("\n")[2], / off node +pareto$/);
    assert.match(text, /12\.50%/);
  });

  test("without a Pareto row, no footnote", () => {
    const none = rows.map((r) => ({ ...r, paretoOptimal: false }));
    assert.doesNotMatch(formatSweepTable(none, "t"), /Pareto front/);
  });
});

describe("sweepStartLine", () => {
  test("says the size, the threads used and a rough duration in s, min or h", () => {
    assert.equal(
      sweepStartLine(1, { steps: 10, layers: 1, experts: 8 }, 4, true),
      "eplb simulate --sweep: 1 configuration x 10 steps on 1 thread, about 1 s (rough estimate)\n",
    );
    assert.match(
      sweepStartLine(12, { steps: 2000, layers: 58, experts: 256 }, 2, false),
      /on 2 threads, about 1 min/,
    );
    assert.match(
      sweepStartLine(1000, { steps: 100000, layers: 61, experts: 256 }, 2, false),
      /about \d+\.\d h \(rough estimate\)\n$/,
    );
  });
});
