/**
 * plan, eval and report on vLLM windows, TensorRT-LLM statistics folders and .npz archives:
 * what is ambiguous is refused in one line with exit 2, what is explicit is read as the engine
 * meant it.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { cli, repoRoot, spawnCli } from "../helpers/cli.js";

const dir = join(repoRoot, "test", "fixtures", "engines");
const at = (...parts: string[]) => join(dir, ...parts);
const tmp = mkdtempSync(join(tmpdir(), "eplb-engine-inputs-"));
const shape = ["--replicas", "8", "--gpus", "4"];
/** The vLLM window saved alone, with the map it was recorded under. */
const windowWithMap = [
  "--loads",
  at("vllm", "window-only.pt"),
  "--slot-placement",
  at("vllm", "p2l.json"),
];

/** A refusal: exit 2, one line on stderr matching `pattern`, nothing on stdout. */
function assertRefused(argv: string[], pattern: RegExp): void {
  const r = spawnCli(argv);
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
  assert.match(r.stderr, pattern);
}

describe("vLLM windows in plan, eval and report", () => {
  for (const command of ["plan", "eval", "report"]) {
    test(`${command}: a bare window is refused in one line suggesting --slot-placement`, () => {
      const extra =
        command === "plan"
          ? shape
          : command === "eval"
            ? ["--placement", at("vllm", "p2l.json"), "--gpus", "2"]
            : ["--html", join(tmp, "r.html"), ...shape];
      assertRefused(
        [command, "--loads", at("vllm", "window-only.pt"), ...extra],
        /per physical slot .*--slot-placement/,
      );
    });
  }

  test("plan --slot-placement folds the window: same plan as the self-contained state file", async () => {
    const a = await cli(["plan", ...windowWithMap, ...shape]);
    const b = await cli(["plan", "--loads", at("vllm", "eplb-state.pt"), ...shape]);
    assert.equal(a.code, 0, a.stderr);
    assert.equal(b.code, 0, b.stderr);
    assert.equal(JSON.parse(a.stdout).metrics.experts, 8);
    assert.match(
      a.stderr,
      /read: expert_load_window \[5, 3, 10\] counted per slot, folded into 8 experts by the slot placement/,
    );
    assert.match(b.stderr, /folded into 8 experts by the physical_to_logical_map/);
    assert.deepEqual(JSON.parse(a.stdout).phy2log, JSON.parse(b.stdout).phy2log);
  });

  test("eval --slot-placement measures the placement on the folded loads", async () => {
    const r = await cli([
      "eval",
      ...windowWithMap,
      "--placement",
      at("vllm", "p2l.json"),
      "--gpus",
      "2",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const plain = await cli([
      "eval",
      "--loads",
      at("vllm", "eplb-state.pt"),
      "--placement",
      at("vllm", "p2l.json"),
      "--gpus",
      "2",
      "--json",
    ]);
    assert.equal(plain.code, 0, plain.stderr);
    assert.deepEqual(JSON.parse(r.stdout), JSON.parse(plain.stdout));
  });

  test("report --slot-placement writes the page", async () => {
    const html = join(tmp, "vllm.html");
    const r = await cli(["report", ...windowWithMap, "--html", html, ...shape]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(readFileSync(html, "utf8"), /<html/i);
  });

  test("a missing --slot-placement is named as such, not as the loads file", () => {
    assertRefused(
      ["plan", "--loads", at("vllm", "window-only.pt"), "--slot-placement", "nope.json", ...shape],
      /cannot read nope\.json: no such file/,
    );
  });

  test("a load on an unused (-1) slot and --steps on the ring buffer are refused", () => {
    assertRefused(
      ["plan", "--loads", at("vllm", "elastic-load-on-unused-slot.pt"), ...shape],
      /unused \(-1\)/,
    );
    assertRefused(
      ["plan", "--loads", at("vllm", "eplb-state.pt"), "--steps", "-2:", ...shape],
      /ring buffer/,
    );
  });
});

/** `eplb plan` of the statistics folder to TensorRT-LLM YAML; must succeed. */
async function planTrtllm(...extra: string[]) {
  const argv = ["plan", "--loads", at("trtllm", "stats"), ...shape, "--output-format", "trtllm"];
  const r = await cli([...argv, ...extra]);
  assert.equal(r.code, 0, r.stderr);
  return r;
}

describe("TensorRT-LLM statistics folder in plan", () => {
  test("the summary says what was read; trtllm output keys the model's layers", async () => {
    const r = await planTrtllm();
    assert.match(
      r.stderr,
      /read: TensorRT-LLM statistics: 2 ranks, iterations 100-103 \(4 of 4\), 3 MoE layers \(model layers 3-5\)/,
    );
    assert.match(r.stdout, /^ {2}3: \[/m);
    assert.match(r.stdout, /^ {2}5: \[/m);
    assert.doesNotMatch(r.stdout, /^ {2}0: \[/m);
  });

  test("an explicit --first-layer wins", async () => {
    const r = await planTrtllm("--first-layer", "0");
    assert.match(r.stdout, /^ {2}0: \[/m);
  });

  test("incomplete statistics are refused in one line", () => {
    assertRefused(
      ["plan", "--loads", at("trtllm", "incomplete"), ...shape],
      /no rank recorded layer 4 in iteration 101/,
    );
  });

  test("a rank missing records: a warning line, then the plan", async () => {
    const r = await cli(["plan", "--loads", at("trtllm", "rank-missing-record"), ...shape]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: .*rank1\.safetensors lacks 1 of the 12/m);
  });
});

describe("TensorRT-LLM statistics folder in simulate", () => {
  test("replays the iterations in order", async () => {
    const r = await cli([
      "simulate",
      "--trace",
      at("trtllm", "stats"),
      ...shape,
      "--interval",
      "2",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).trace, {
      file: at("trtllm", "stats"),
      steps: 4,
      layers: 3,
      experts: 8,
    });
  });
});

describe(".npz in plan", () => {
  test("several arrays and no --key: refused listing them; --key reads one", async () => {
    assertRefused(
      ["plan", "--loads", at("npz", "two-arrays.npz"), ...shape],
      /holds 2 arrays \("first", "second"\).*--key/,
    );
    const r = await cli([
      "plan",
      "--loads",
      at("npz", "two-arrays.npz"),
      "--key",
      "first",
      ...shape,
    ]);
    assert.equal(r.code, 0, r.stderr);
  });

  test("--format npz is accepted", async () => {
    const r = await cli(["plan", "--loads", at("npz", "loads.npz"), "--format", "npz", ...shape]);
    assert.equal(r.code, 0, r.stderr);
  });
});
