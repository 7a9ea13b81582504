import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { placementFromPhy2log, toLoadMatrix } from "../../src/index.js";
import { evaluateForEngines } from "../../src/pipeline/evaluate.js";
import { cli, sharedDir, spawnCli } from "../helpers/cli.js";
import { evalCase } from "../helpers/small-cases.js";

const fixtures = join(sharedDir, "fixtures");
const tmp = mkdtempSync(join(tmpdir(), "eplb-eval-"));

function file(name: string, value: unknown): string {
  const path = join(tmp, name);
  writeFileSync(path, typeof value === "string" ? value : JSON.stringify(value));
  return path;
}

// The hand-computed case (see test/helpers/small-cases.ts).
const { loads: loadsArr, phy2log: p2l } = evalCase;

describe("eplb eval", () => {
  const loads = file("loads.json", { weight: loadsArr });
  const placement = file("placement.json", { physical_to_logical_map: p2l });

  test("--json writes the same figures the function computes", async () => {
    const r = await cli([
      "eval",
      "--loads",
      loads,
      "--placement",
      placement,
      "--gpus",
      "3",
      "--nodes",
      "3",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    const expected = evaluateForEngines(toLoadMatrix(loadsArr), placementFromPhy2log(p2l, 4), 3, 3);
    // The CLI adds where the loads came from.
    assert.deepEqual(json.loads, {
      description: "1 file (JSON)",
      files: 1,
      kinds: ["JSON"],
    });
    delete json.loads;
    assert.deepEqual(json, JSON.parse(JSON.stringify(expected)));
  });

  test("the table shows every engine's figure beside the no-EPLB baseline", async () => {
    const r = await cli(["eval", "--loads", loads, "--placement", placement, "--gpus", "3"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^eplb eval: 2 layers, 4 experts, 6 slots on 3 GPUs \(1 node\)/);
    assert.match(r.stdout, /vLLM balancedness .* 0\.815 +0\.524/);
    assert.match(r.stdout, /TensorRT-LLM imbalance .* 0\.313 +1\.250/);
    assert.match(r.stdout, /vllm-ascend peak\/average .* 1\.313 +2\.250/);
    assert.match(r.stdout, /SGLang balancedness/);
    assert.match(r.stdout, /max GPU load \/ lower bound/);
    assert.match(r.stdout, /load per node \(share of the total\): node 0 100\.0%/);
    assert.equal(r.stderr, "");
  });

  test("an engine placement file from eplb plan gives plan's own figures", async () => {
    const dump = join(fixtures, "sglang-stat-dump-int32.pt");
    const shape = ["--replicas", "20", "--groups", "4", "--nodes", "2", "--gpus", "4"];
    const plan = await cli(["plan", "--loads", dump, ...shape]);
    const init = file("init.json", { physical_to_logical_map: JSON.parse(plan.stdout).phy2log });
    const r = await cli([
      "eval",
      "--loads",
      dump,
      "--placement",
      init,
      "--gpus",
      "4",
      "--nodes",
      "2",
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).metrics, JSON.parse(plan.stdout).metrics.after);
  });

  test("the GPU count comes from a vllm-ascend expert map; --steps slices the loads", async () => {
    const dump = join(fixtures, "hotness-int64.npy");
    const conv = await cli([
      "convert",
      "--placement",
      join(fixtures, "sglang-init-p2l.pt"),
      "--output-format",
      "vllm-ascend",
      "--gpus",
      "5",
    ]);
    const map = file("map.json", conv.stdout);
    const r = await cli(["eval", "--loads", dump, "--placement", map, "--steps", "-3:", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.gpus, 5);
    const explicit = await cli([
      "eval",
      "--loads",
      dump,
      "--placement",
      map,
      "--steps",
      "13:16",
      "--gpus",
      "5",
      "--json",
    ]);
    assert.deepEqual(JSON.parse(explicit.stdout), json);
  });

  const mistakes: Array<[string, string[], RegExp]> = [
    ["missing --loads", ["eval", "--placement", "p.json", "--gpus", "2"], /--loads is required/],
    [
      "missing --placement",
      ["eval", "--loads", "l.json", "--gpus", "2"],
      /--placement is required/,
    ],
    [
      "no GPU count",
      ["eval", "--loads", loads, "--placement", placement],
      /--gpus is required \(the placement file does not state its GPU count\)/,
    ],
    [
      "GPUs that do not divide the slots",
      ["eval", "--loads", loads, "--placement", placement, "--gpus", "4"],
      /numGpus \(4\) must divide the placement's slots per layer \(6\)/,
    ],
    [
      "nodes that do not divide the GPUs",
      ["eval", "--loads", loads, "--placement", placement, "--gpus", "3", "--nodes", "2"],
      /numNodes \(2\) must divide numGpus \(3\)/,
    ],
    [
      "layers that differ",
      [
        "eval",
        "--loads",
        file("one-layer.json", [[8, 4, 2, 2]]),
        "--placement",
        placement,
        "--gpus",
        "3",
      ],
      /placement.layers \(2\) must equal the number of layers in the loads \(1\)/,
    ],
    [
      "expert ids beyond the loads",
      [
        "eval",
        "--loads",
        loads,
        "--placement",
        file("p9.json", [
          [0, 1, 2, 3, 9, 1],
          [0, 1, 2, 3, 0, 1],
        ]),
        "--gpus",
        "3",
      ],
      /\(9\) must be an expert id in 0\.\.3/,
    ],
    [
      "experts without a slot",
      [
        "eval",
        "--loads",
        file("five.json", [
          [1, 1, 1, 1, 1],
          [1, 1, 1, 1, 1],
        ]),
        "--placement",
        placement,
        "--gpus",
        "3",
      ],
      /expert 4.*has no replica/,
    ],
    [
      "a bad --steps",
      [
        "eval",
        "--loads",
        join(fixtures, "hotness-int64.npy"),
        "--placement",
        placement,
        "--gpus",
        "3",
        "--steps",
        "30:40",
      ],
      /selects none of the 16 steps/,
    ],
    [
      "a bad --placement-format",
      [
        "eval",
        "--loads",
        loads,
        "--placement",
        placement,
        "--gpus",
        "3",
        "--placement-format",
        "doc",
      ],
      /--placement-format \("doc"\) must be one of/,
    ],
    [
      "a missing loads file",
      ["eval", "--loads", join(tmp, "none.pt"), "--placement", placement, "--gpus", "3"],
      /cannot read .*none\.pt: no such file/,
    ],
  ];
  for (const [name, argv, message] of mistakes) {
    test(`a user mistake (${name}): one line on stderr, nothing on stdout, exit 2`, async () => {
      const r = await cli(argv);
      assert.equal(r.code, 2, r.stdout + r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    });
  }

  test("the real binary: a broken torch file gives exit 2, one line, no stack trace", () => {
    const broken = file("broken.pt", "PK\u0003\u0004 not really a zip");
    const r = spawnCli(["eval", "--loads", broken, "--placement", placement, "--gpus", "3"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test("--help lists the flags and the engines", async () => {
    const r = await cli(["eval", "--help"]);
    assert.equal(r.code, 0);
    for (const word of [
      "--loads",
      "--placement",
      "--gpus",
      "--nodes",
      "--steps",
      "--json",
      "vLLM",
      "SGLang",
      "TensorRT-LLM",
      "vllm-ascend",
    ]) {
      assert.ok(r.stdout.includes(word), word);
    }
  });
});
