import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runCli } from "../../src/cli/main.js";
import { markParetoFront, type SweepRow } from "../../src/cli/sweep.js";
import { synthesizeTrace } from "../../src/index.js";
import { writeNpy } from "../../src/io/npy-write.js";
import { cli, sharedDir, spawnCli } from "../helpers/cli.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-simulate-"));

/** Two experts, popularity flips after two steps (see test/core/traces/simulate.test.ts). */
const flipPath = join(tmp, "flip.json");
writeFileSync(
  flipPath,
  JSON.stringify({ logical_count: [[[3, 1]], [[3, 1]], [[1, 3]], [[1, 3]]] }),
);
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
];

const synthPath = join(tmp, "synth.npy");
const synth = synthesizeTrace({ steps: 300, layers: 4, experts: 16, seed: 3, drift: 0.02 });
writeNpy(synthPath, synth.data, [synth.steps, synth.layers, synth.experts], "int64");
// deepseek keeps these runs fast; the policy itself is not what the CLI tests are about.
const synthArgs = [
  "simulate",
  "--trace",
  synthPath,
  "--replicas",
  "20",
  "--gpus",
  "4",
  "--policy",
  "deepseek",
];

describe("eplb simulate: one configuration", () => {
  test("prints a table: the configuration, deepseek re-planning, oracle, no balancing", async () => {
    const r = await cli(flipArgs);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /4 steps x 1 layers x 2 experts/);
    assert.match(r.stdout, /judged steps 2\.\.3 \(2\), 1 rebalances/);
    assert.match(r.stdout, /eplb \(deepseek, from previous\) +0\.6000 +0\.6000 +0 +0\.00%/);
    assert.match(r.stdout, /oracle \(deepseek on the judged steps\) +1\.0000/);
    assert.match(r.stdout, /no balancing \(experts in order\) +0\.6667/);
    assert.match(r.stderr, /eplb simulate: \d+\.\d\d s/);
  });

  test("--json: summary figures at the top level, baselines and per-step series", async () => {
    const r = await cli([...flipArgs, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.meanRealizedBalancedness, 0.6);
    assert.equal(j.movedSlotsPerRebalance, 0);
    assert.equal(j.rebalances, 1);
    assert.equal(j.baselines.oracle.meanRealizedBalancedness, 1);
    assert.deepEqual(j.series.balancedness.eplb, [0.6, 0.6]);
    assert.deepEqual(j.series.balancedness.none, [0.666667, 0.666667]);
    assert.deepEqual(j.series.rebalanceSteps, [2]);
    assert.deepEqual(j.series.movedSlots.eplb, [0]);
    assert.equal(j.config.window, 2, "the window defaults to the interval");
    assert.equal(j.config.policy, "deepseek");
  });

  test("the same trace as .npy and as JSON gives the same figures", async () => {
    const a = await cli([...synthArgs, "--interval", "50", "--json"]);
    const jsonPath = join(tmp, "synth.json");
    const rows: number[][][] = [];
    const n = synth.layers * synth.experts;
    for (let t = 0; t < synth.steps; t++) {
      const step: number[][] = [];
      for (let l = 0; l < synth.layers; l++) {
        const base = t * n + l * synth.experts;
        step.push(Array.from(synth.data.subarray(base, base + synth.experts)));
      }
      rows.push(step);
    }
    writeFileSync(jsonPath, JSON.stringify({ logical_count: rows }));
    const b = await cli([
      ...synthArgs.map((x) => (x === synthPath ? jsonPath : x)),
      "--interval",
      "50",
      "--json",
    ]);
    assert.equal(a.code, 0, a.stderr);
    assert.deepEqual(JSON.parse(a.stdout).series, JSON.parse(b.stdout).series);
  });

  test("a .npy trace streams step by step: a bad count late in the file is one line, exit 2", async () => {
    const bad = Float64Array.from(synth.data);
    bad[(250 * synth.layers + 2) * synth.experts + 5] = -1;
    const badPath = join(tmp, "bad-late.npy");
    writeNpy(badPath, bad, [synth.steps, synth.layers, synth.experts], "float64");
    const r = await cli([
      ...synthArgs.map((x) => (x === synthPath ? badPath : x)),
      "--interval",
      "50",
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /bad-late\.npy: loads\[250\]\[2\]\[5\] \(-1\) must be finite and >= 0/);
    assert.equal(r.stderr.trim().split("\n").length, 1);
  });

  test("--steps replays a slice; estimator flags reach the estimator", async () => {
    const r = await cli([
      ...synthArgs,
      "--interval",
      "20",
      "--steps",
      "-100:",
      "--estimator",
      "meanstd",
      "--k",
      "2",
      "--slices",
      "2",
      "--window",
      "40",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.trace.steps, 100);
    assert.deepEqual(j.config.estimator, {
      kind: "meanstd",
      window: 40,
      halfLife: 10,
      k: 2,
      slices: 2,
    });
    assert.equal(j.judgedSteps, 80);
  });

  test("--relaxed is passed on as relaxedHierarchy; deepseek refuses it", async () => {
    // Two groups on two nodes: strict keeps a group's replicas on its node.
    const args = [
      "simulate",
      "--trace",
      synthPath,
      "--replicas",
      "24",
      "--groups",
      "2",
      "--nodes",
      "2",
      "--gpus",
      "4",
      "--interval",
      "50",
      "--json",
    ];
    // The strict contract keeps every replica of a group on its node: nothing served off-node.
    const strict = JSON.parse((await cli(args)).stdout);
    assert.equal(strict.offNodeShare, 0);
    assert.equal(strict.baselines.deepseek.offNodeShare, 0);
    const relaxed = await cli([...args, "--relaxed"]);
    assert.equal(relaxed.code, 0, relaxed.stderr);
    const share = JSON.parse(relaxed.stdout).offNodeShare;
    assert.ok(share >= 0 && share < 1, String(share));
    assert.deepEqual(JSON.parse(relaxed.stdout).config.rebalanceOptions, {
      relaxedHierarchy: true,
    });
    const table = await cli([...args.slice(0, -1), "--relaxed"]);
    assert.match(table.stdout, /policy balanced, relaxed hierarchy from the previous placement/);
    // A relaxed sweep names its off-node column; every row fills it.
    const sweep = await cli([...args.slice(0, -1), "--relaxed", "--sweep", "interval=25,50"]);
    assert.equal(sweep.code, 0, sweep.stderr);
    const [header, ...rows] = sweep.stdout.trim().split("\n").slice(2, 5);
    assert.match(header, /off node +pareto$/);
    const width = header.trim().split(/\s{2,}/).length;
    for (const row of rows) {
      // The off-node share, then the Pareto mark when the row has one.
      const marked = row.trimEnd().endsWith("*");
      assert.match(row.trimEnd(), marked ? /% +\*$/ : /%$/);
      assert.equal(row.trim().split(/\s+/).length, marked ? width : width - 1);
    }
    const bad = await cli([...args, "--relaxed", "--policy", "deepseek"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--relaxed needs a policy other than deepseek/);
  });

  test("the shared hotness fixture (an int64 .npy) simulates", async () => {
    const r = await cli([
      "simulate",
      "--trace",
      join(sharedDir, "fixtures", "hotness-int64.npy"),
      "--replicas",
      "20",
      "--gpus",
      "4",
      "--interval",
      "4",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.equal(j.judgedSteps, 12);
    assert.ok(j.meanRealizedBalancedness > j.baselines.none.meanRealizedBalancedness);
  });
});

describe("eplb simulate --sweep", () => {
  const sweep = [
    ...synthArgs,
    "--interval",
    "50",
    "--sweep",
    "interval=25,50",
    "--sweep",
    "estimator=mean,ema,max",
  ];

  test("one row per configuration of the grid, as a table, CSV or JSON", async () => {
    const table = await cli(sweep);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /6 configurations/);
    // Title, blank, header, 6 rows, blank, the Pareto footnote.
    assert.equal(table.stdout.trim().split("\n").length, 2 + 1 + 6 + 2);
    const csv = await cli([...sweep, "--csv"]);
    const lines = csv.stdout.trim().split("\n");
    assert.equal(lines.length, 7);
    assert.match(
      lines[0],
      /^interval,window,replicas,policy,estimator,from_previous,move_budget,min_gain,tolerance,slot_gain,balancedness,/,
    );
    assert.match(lines[1], /^25,50,20,[a-z]+,mean,true,,,,,0\.\d+/);
    // Every table row has exactly the header's columns (no off-node column on a global shape).
    const [header, ...rows] = table.stdout.trim().split("\n").slice(2, 9);
    const width = header.trim().split(/\s{2,}/).length;
    assert.doesNotMatch(header, /off node/);
    for (const row of rows) {
      const marked = row.trimEnd().endsWith("*");
      assert.equal(row.trim().split(/\s+/).length, marked ? width : width - 1);
    }
    const json = JSON.parse((await cli([...sweep, "--json"])).stdout);
    assert.equal(json.length, 6);
    assert.deepEqual(
      json.map((r: { interval: number; estimator: string }) => `${r.interval}/${r.estimator}`),
      ["25/mean", "25/ema", "25/max", "50/mean", "50/ema", "50/max"],
    );
    assert.equal(typeof json[0].meanRealizedBalancedness, "number");
    assert.equal(typeof json[0].baselines.deepseek.movedSlotsPerRebalance, "number");
  });

  test("the Pareto front of balancedness against moves per step is marked in every output", async () => {
    const table = await cli(sweep);
    const lines = table.stdout.trim().split("\n");
    assert.match(lines[2], /moved\/step .* pareto$/);
    assert.match(table.stdout, /\* = on the Pareto front/);
    const rows = JSON.parse((await cli([...sweep, "--json"])).stdout);
    const front = rows.filter((r: SweepRow) => r.paretoOptimal);
    assert.ok(front.length >= 1);
    for (const r of rows) {
      assert.equal(r.movedSlotsPerStep, r.movedSlotsPerRebalance / r.interval);
      const dominated = rows.some(
        (o: SweepRow) =>
          o.meanRealizedBalancedness >= r.meanRealizedBalancedness &&
          o.movedSlotsPerStep <= r.movedSlotsPerStep &&
          (o.meanRealizedBalancedness > r.meanRealizedBalancedness ||
            o.movedSlotsPerStep < r.movedSlotsPerStep),
      );
      assert.equal(r.paretoOptimal, !dominated);
    }
    // Table rows carry the mark exactly where the JSON says so.
    const marks = lines.slice(3, 3 + rows.length).map((l) => l.trimEnd().endsWith("*"));
    assert.deepEqual(
      marks,
      rows.map((r: SweepRow) => r.paretoOptimal),
    );
    const csv = (await cli([...sweep, "--csv"])).stdout.trim().split("\n");
    assert.match(csv[0], /,moved_per_step,pareto$/);
    assert.deepEqual(
      csv.slice(1).map((l) => l.endsWith(",true")),
      rows.map((r: SweepRow) => r.paretoOptimal),
    );
  });

  test("markParetoFront: dominated rows are off the front, ties stay on it", () => {
    const row = (b: number, m: number) =>
      ({ meanRealizedBalancedness: b, movedSlotsPerStep: m, paretoOptimal: true }) as SweepRow;
    const rows = [row(0.9, 30), row(0.88, 20), row(0.88, 25), row(0.85, 20), row(0.9, 30)];
    assert.deepEqual(
      markParetoFront(rows).map((r) => r.paretoOptimal),
      [true, true, false, false, true],
    );
  });

  test("previous and move-budget sweep the rebalancing: a zero budget moves nothing", async () => {
    const rows = JSON.parse(
      (
        await cli([
          ...synthArgs,
          "--interval",
          "50",
          "--sweep",
          "previous=no,yes",
          "--sweep",
          "move-budget=0,0.5",
          "--json",
        ])
      ).stdout,
    );
    assert.deepEqual(
      rows.map((r: { fromPrevious: boolean; moveBudget: number }) => [
        r.fromPrevious,
        r.moveBudget,
      ]),
      [
        [false, 0],
        [false, 0.5],
        [true, 0],
        [true, 0.5],
      ],
    );
    // From scratch the budget does not apply; from the previous placement a zero budget keeps it.
    assert.ok(rows[0].movedSlotsPerRebalance > 0);
    assert.equal(rows[2].movedSlotsPerRebalance, 0);
    assert.ok(rows[3].movedSlotsPerRebalance > 0);
    const bad = await cli([...synthArgs, "--interval", "50", "--sweep", "previous=maybe"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /"maybe" must be yes or no/);
  });

  test("slot-gain sweeps the polish: a larger slot gain moves fewer slots", async () => {
    const r = await cli([...synthArgs, "--interval", "50", "--sweep", "slot-gain=0,1", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = JSON.parse(r.stdout);
    assert.deepEqual(
      rows.map((x: { slotGain: number }) => x.slotGain),
      [0, 1],
    );
    assert.ok(rows[1].movedSlotsPerRebalance < rows[0].movedSlotsPerRebalance);
    const single = await cli([...synthArgs, "--interval", "50", "--slot-gain", "1", "--json"]);
    assert.equal(single.code, 0, single.stderr);
    const j = JSON.parse(single.stdout);
    assert.deepEqual(j.config.rebalanceOptions, { slotGain: 1 });
    assert.equal(j.movedSlotsPerRebalance, rows[1].movedSlotsPerRebalance);
    const bad = await cli([...synthArgs, "--interval", "50", "--slot-gain", "-1"]);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--slot-gain/);
  });

  test("worker threads give exactly the rows of the in-process run", async () => {
    const inProcess = JSON.parse((await cli([...sweep, "--json", "--workers", "1"])).stdout);
    const threaded = await cli([...sweep, "--json", "--workers", "2"]);
    assert.equal(threaded.code, 0, threaded.stderr);
    assert.deepEqual(JSON.parse(threaded.stdout), inProcess);
  });

  test("a sweep over replicas and window matches single runs", async () => {
    const rows = JSON.parse(
      (await cli([...synthArgs, "--interval", "50", "--sweep", "replicas=16,24", "--json"])).stdout,
    );
    const single = JSON.parse(
      (await cli([...synthArgs.map((x) => (x === "20" ? "24" : x)), "--interval", "50", "--json"]))
        .stdout,
    );
    assert.equal(rows[1].replicas, 24);
    assert.equal(rows[1].meanRealizedBalancedness, single.meanRealizedBalancedness);
    assert.equal(rows[1].movedSlotsPerRebalance, single.movedSlotsPerRebalance);
  });
});

describe("eplb simulate: terminal progress and engine inputs", () => {
  async function run(
    argv: string[],
    tty: boolean,
  ): Promise<{ code: number; stderr: string; stdout: string }> {
    let stdout = "";
    let stderr = "";
    const code = await runCli(argv, {
      stdout: (t) => {
        stdout += t;
      },
      stderr: (t) => {
        stderr += t;
      },
      stderrIsTTY: tty,
      cwd: process.cwd(),
    });
    return { code, stdout, stderr };
  }

  test("a progress bar is drawn on stderr only when stderr is a terminal; stdout is the same", async () => {
    const argv = [...synthArgs, "--interval", "50", "--sweep", "interval=50,100"];
    const tty = await run(argv, true);
    const pipe = await run(argv, false);
    assert.equal(tty.code, 0, tty.stderr);
    assert.match(tty.stderr, /\r\[#+-*\] +\d+% steps \d+\/600/);
    assert.match(tty.stderr, /100% steps 600\/600/);
    assert.doesNotMatch(pipe.stderr, /\r/);
    assert.equal(tty.stdout, pipe.stdout);
  });

  test("--slot-placement folds per-slot counts (vLLM) into experts before replaying", async () => {
    // Slots hold experts [0, 1, 0]: slot counts [2, 1, 1] are expert counts [3, 1].
    const slotsPath = join(tmp, "slots.json");
    const placementPath = join(tmp, "p2l.json");
    writeFileSync(
      slotsPath,
      JSON.stringify({ logical_count: [[[2, 1, 1]], [[2, 1, 1]], [[1, 3, 0]], [[0, 3, 1]]] }),
    );
    writeFileSync(placementPath, JSON.stringify({ physical_to_logical_map: [[0, 1, 0]] }));
    const r = await cli([
      ...flipArgs.map((x) => (x === flipPath ? slotsPath : x)),
      "--slot-placement",
      placementPath,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).series.balancedness.eplb, [0.6, 0.6]);
  });
});

describe("eplb simulate --html", () => {
  test("a single run's report: simulation section (table, timeline, moves), then the last placement", async () => {
    const html = join(tmp, "sim.html");
    const r = await cli([...synthArgs, "--interval", "50", "--html", html]);
    assert.equal(r.code, 0, r.stderr);
    const page = readFileSync(html, "utf8");
    assert.match(page, /<section id="simulation"/);
    assert.match(page, /aria-label="Realised balancedness per step"/);
    assert.match(page, /aria-label="Slots moved at each rebalance"/);
    assert.match(page, /<section id="placement"/);
    assert.ok(page.indexOf('id="simulation"') < page.indexOf('id="summary"'));
    assert.doesNotMatch(page, /<script/);
  });

  test("a sweep's report draws every configuration", async () => {
    const html = join(tmp, "sweep.html");
    const r = await cli([
      ...synthArgs,
      "--interval",
      "50",
      "--sweep",
      "window=25,50,100",
      "--html",
      html,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const page = readFileSync(html, "utf8");
    assert.match(page, /<section id="sweep"/);
    assert.match(page, /aria-label="Realised balancedness per configuration"/);
    // Each window labels its bars; the Pareto front's labels carry the table's "*".
    for (const w of ["25", "50", "100"]) assert.match(page, new RegExp(`>${w}( \\*)?</text>`), w);
    assert.match(page, />\d+ \*<\/text>/);
    assert.match(page, /\* marks the Pareto front/);
  });
});

describe("eplb simulate: mistakes", () => {
  test("exit 2 with one line on stderr and nothing on stdout", async () => {
    const cases: Array<[string[], RegExp]> = [
      [["simulate", "--replicas", "4", "--gpus", "2", "--interval", "2"], /--trace is required/],
      [
        [...flipArgs.slice(0, -4), "--interval", "4"],
        /--interval 4 must be smaller than the trace's 4 steps/,
      ],
      [[...flipArgs, "--sweep", "gpus=2,4"], /--sweep gpus=2,4: the name must be one of/],
      [[...flipArgs, "--sweep", "interval=0"], /"0" must be an integer >= 1/],
      [[...flipArgs, "--sweep", "estimator=median"], /estimator "median" must be one of/],
      [[...flipArgs, "--csv"], /--csv needs --sweep/],
      [[...flipArgs, "--estimator", "median"], /--estimator \("median"\) must be one of/],
      [
        flipArgs.map((a, i) => (flipArgs[i - 1] === "--gpus" ? "3" : a)),
        /numGpus \(3\) must divide numReplicas \(4\)/,
      ],
      [[...flipArgs, "--gpus", "3"], /--gpus is given twice/],
      [[...flipArgs, "--sweep", "replicas=4,5"], /numGpus \(2\) must divide numReplicas \(5\)/],
      [
        [
          "simulate",
          "--trace",
          join(tmp, "missing.npy"),
          "--replicas",
          "4",
          "--gpus",
          "2",
          "--interval",
          "2",
        ],
        /missing\.npy/,
      ],
    ];
    for (const [argv, message] of cases) {
      const r = await cli(argv);
      assert.equal(r.code, 2, `${argv.join(" ")}: ${r.stderr}`);
      assert.equal(r.stdout, "");
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
      assert.match(r.stderr, message);
    }
  });

  test("--help documents the estimators and the sweep", async () => {
    const r = await cli(["simulate", "--help"]);
    assert.equal(r.code, 0);
    for (const word of ["mean", "ema", "max", "meanstd", "--sweep", "--interval", "--window"]) {
      assert.ok(r.stdout.includes(word), word);
    }
  });

  test("the real binary runs a sweep on worker threads and exits 0", () => {
    const r = spawnCli([...sweep(), "--workers", "2", "--csv"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim().split("\n").length, 3);
    function sweep() {
      return [...synthArgs, "--interval", "100", "--sweep", "window=50,100"];
    }
  });
});
