/**
 * Issue 13, the CLI's side: hostile and careless invocations end in one line on stderr, nothing on
 * stdout and exit 2 (70 for a bug of ours), within bounded work; no file of the user's is ever
 * lost or written through a link; the same command twice writes the same bytes.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import {
  existsSync,
  linkSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { binPath, cli, repoRoot } from "../helpers/cli.js";
import { tempFiles } from "../helpers/temp.js";

const example = join(repoRoot, "examples", "loads.json");
const shape = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"];
const { dir: tmp, file } = tempFiles("eplb-hostile-");
let n = 0;

/** A 6-step trace of one layer and 4 experts, and the simulate flags for it. */
function tinySimulate(): string[] {
  const trace = file(
    "trace.json",
    JSON.stringify({ logical_count: Array.from({ length: 6 }, () => [[1, 2, 3, 4]]) }),
  );
  return ["simulate", "--trace", trace, "--replicas", "4", "--gpus", "2", "--interval", "2"];
}

/** A user mistake: exit 2, one line on stderr naming the command, nothing on stdout. */
function assertOneLine(r: { code: number; stdout: string; stderr: string }, pattern: RegExp) {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  assert.match(r.stderr, /^eplb \w+: [^\n]+\n$/);
  assert.match(r.stderr, pattern);
}

describe("arguments (issue 13, item 12)", () => {
  test("a repeated single-valued flag is refused in one line", async () => {
    assertOneLine(
      await cli(["plan", "--loads", example, ...shape, "--replicas", "32"]),
      /--replicas is given twice/,
    );
    assertOneLine(
      await cli([
        "plan",
        "--loads",
        example,
        ...shape,
        "--policy",
        "deepseek",
        "--policy",
        "balanced",
      ]),
      /--policy is given twice/,
    );
    // --loads repeats (one file per rank, summed), but one file named twice would count twice.
    assertOneLine(
      await cli(["plan", "--loads", example, "--loads", example, ...shape]),
      /is given twice: it would be counted twice/,
    );
  });

  test("a flag declared multiple (simulate --sweep) may repeat", async () => {
    const r = await cli([
      "simulate",
      "--trace",
      example,
      ...shape,
      "--interval",
      "1",
      "--sweep",
      "interval=1",
      "--sweep",
      "window=1,2",
    ]);
    assert.doesNotMatch(r.stderr, /given twice/);
  });

  test("values with stray spaces are refused", async () => {
    assertOneLine(
      await cli(["plan", "--loads", example, ...shape.slice(0, 6), "--gpus", " 8"]),
      /--gpus \(" 8"\) has stray spaces/,
    );
    assertOneLine(
      await cli(["plan", "--loads", `${example} `, ...shape]),
      /--loads .* has stray spaces/,
    );
  });
});

describe("topology and sweep limits (items 3, 4)", () => {
  test("shapes beyond the largest eplb plans are refused in one line, before reading", async () => {
    for (const [flags, pattern] of [
      [
        ["--replicas", "1000000000", "--gpus", "1000000"],
        /--replicas \(1000000000\) must be at most 65536/,
      ],
      [
        ["--replicas", "100000000", "--gpus", "1"],
        /--replicas \(100000000\) must be at most 65536/,
      ],
      [
        ["--replicas", "9007199254740993", "--gpus", "1"],
        /--replicas \("9007199254740993"\) is beyond 2\^53/,
      ],
      [
        ["--replicas", "16", "--gpus", "8", "--nodes", "100000"],
        /--nodes \(100000\) must be at most/,
      ],
    ] as const) {
      // A missing loads file: the limits are checked before any file is opened.
      assertOneLine(await cli(["plan", "--loads", join(tmp, "absent.json"), ...flags]), pattern);
    }
  });

  test("the largest shape is stated in --help", async () => {
    for (const command of ["plan", "simulate", "report"]) {
      const r = await cli([command, "--help"]);
      assert.match(r.stdout, /largest shape planned, far above any engine.s: up to 4096 layers,/);
    }
  });

  test("layers x slots beyond the limit are refused by the library entry too", async () => {
    const rows = Array.from({ length: 300 }, () => Array(256).fill(1));
    const loads = file("wide.json", JSON.stringify(rows));
    assertOneLine(
      await cli(["plan", "--loads", loads, "--replicas", "65536", "--gpus", "1"]),
      /must be at most 16777216 slots in all/,
    );
  });

  test("a sweep grid above the limit is refused with its size and the limit", async () => {
    const values = Array.from({ length: 200 }, (_, i) => i + 1).join(",");
    const r = await cli([
      "simulate",
      "--trace",
      join(tmp, "absent.npy"),
      ...shape,
      "--interval",
      "1",
      "--sweep",
      `interval=${values}`,
      "--sweep",
      `window=${values}`,
    ]);
    assertOneLine(r, /the grid has 40000 configurations, more than the 1000 a sweep runs/);
  });

  test("a sweep prints a start line with its size and an estimate", async () => {
    const r = await cli([...tinySimulate(), "--sweep", "interval=2,3", "--csv"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /eplb simulate --sweep: 2 configurations x 6 steps on 1 thread, about \d+ s \(rough estimate\)/,
    );
  });
});

describe("values (item 6)", () => {
  test("loads whose sum overflows are refused, never NaN", async () => {
    const loads = file("huge.json", "[[1e308, 1e308, 1e308, 1e308]]");
    const r = await cli(["plan", "--loads", loads, "--replicas", "4", "--gpus", "2"]);
    assertOneLine(r, /sums to Infinity, beyond the 1e\+150/);
    const e = await cli([
      "eval",
      "--loads",
      loads,
      "--placement",
      file("p.json", "[[0,1,2,3]]"),
      "--gpus",
      "2",
    ]);
    assertOneLine(e, /sums to Infinity/);
  });
});

describe("output files (items 10, 11)", () => {
  test("an output that is also an input, or another output, is refused and left intact", async () => {
    const loads = file("loads.json", readFileSync(example, "utf8"));
    const before = readFileSync(loads, "utf8");
    assertOneLine(
      await cli(["plan", "--loads", loads, ...shape, "--out", loads]),
      /--out .* is also --loads: eplb does not overwrite its inputs/,
    );
    // The same file under another name: a hard link, a symbolic link, a relative spelling.
    const hard = join(tmp, `${n++}-hard.json`);
    linkSync(loads, hard);
    assertOneLine(
      await cli(["plan", "--loads", loads, ...shape, "--out", hard]),
      /is also --loads/,
    );
    assertOneLine(
      await cli(
        ["plan", "--loads", loads, ...shape, "--out", `./${loads.slice(tmp.length + 1)}`],
        tmp,
      ),
      /is also --loads/,
    );
    const previous = file(
      "prev.json",
      JSON.stringify({
        phy2log: [
          [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3],
          [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0, 1, 2, 3],
        ],
      }),
    );
    const out = join(tmp, `${n++}-out.json`);
    const rebalance = ["plan", "--loads", loads, ...shape, "--previous", previous];
    assertOneLine(
      await cli([...rebalance, "--out", out, "--transfers", out]),
      /--transfers .* is also --out: two outputs cannot share a file/,
    );
    assertOneLine(await cli([...rebalance, "--transfers", previous]), /is also --previous/);
    assert.equal(readFileSync(loads, "utf8"), before);
    assert.equal(existsSync(out), false);
  });

  test("a symbolic link at an output path is refused, its target untouched", async () => {
    const target = file("target.json", "KEEP");
    const link = join(tmp, `${n++}-link.json`);
    symlinkSync(target, link);
    assertOneLine(
      await cli(["plan", "--loads", example, ...shape, "--out", link]),
      /cannot write .*symbolic link/,
    );
    assert.equal(readFileSync(target, "utf8"), "KEEP");
    // A device is written directly (nothing to replace): /dev/null works.
    const r = await cli(["plan", "--loads", example, ...shape, "--out", "/dev/null"]);
    assert.equal(r.code, 0, r.stderr);
  });

  test("a failed write (file size limit) leaves the old file intact and no temporary file", () => {
    const dir = mkdtempSync(join(tmpdir(), "eplb-ulimit-"));
    const out = join(dir, "trace.npy");
    writeFileSync(out, "OLD");
    const r = spawnSync(
      "sh",
      [
        "-c",
        `ulimit -f 1; exec "${process.execPath}" "${binPath}" synth --steps 100 --layers 8 --experts 64 --out trace.npy`,
      ],
      { cwd: dir, encoding: "utf8" },
    );
    assert.equal(r.status, 2, r.stderr);
    assert.equal(
      r.stderr,
      "eplb synth: cannot write trace.npy: file too large (file size limit)\n",
    );
    assert.equal(readFileSync(out, "utf8"), "OLD");
    assert.deepEqual(readdirSync(dir), ["trace.npy"]);
  });

  test("outputs are complete after a run and no temporary file remains", async () => {
    const dir = mkdtempSync(join(tmpdir(), "eplb-atomic-"));
    const out = join(dir, "plan.json");
    writeFileSync(out, "OLD");
    const r = await cli(["plan", "--loads", example, ...shape, "--out", "plan.json"], dir);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(JSON.parse(readFileSync(out, "utf8")).phy2log);
    assert.deepEqual(readdirSync(dir), ["plan.json"]);
  });

  test("the same command twice writes the same bytes (timing only on stderr)", async () => {
    const runs = [];
    for (let i = 0; i < 2; i++) {
      const plan = await cli(["plan", "--loads", example, ...shape]);
      const sim = await cli([...tinySimulate(), "--json"]);
      const html = join(tmp, `${n++}-r.html`);
      const report = await cli(["report", "--loads", example, ...shape, "--html", html]);
      assert.equal(report.code, 0, report.stderr);
      runs.push([
        plan.stdout,
        sim.stdout.replace(/"file":"[^"]*"/, ""),
        readFileSync(html, "utf8"),
      ]);
      assert.doesNotMatch(plan.stdout, /timeMs/);
      assert.doesNotMatch(sim.stdout, /timeMs/);
      assert.match(plan.stderr, /planned in/);
      assert.match(sim.stderr, /eplb simulate: \d+\.\d\d s/);
    }
    assert.deepEqual(runs[0], runs[1]);
  });
});
