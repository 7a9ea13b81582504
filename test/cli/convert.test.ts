import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { OUTPUT_FORMATS, outputFormatExtension } from "../../src/io/writers.js";
import { cli, sharedDir, spawnCli } from "../helpers/cli.js";
import { placementRows } from "../helpers/placement-rows.js";
import { sglangLoad, trtllmLoad, vllmAscendLoad } from "../io/writers-engine-loaders.js";

const fixtures = join(sharedDir, "fixtures");
const initPt = join(fixtures, "sglang-init-p2l.pt");
const tmp = mkdtempSync(join(tmpdir(), "eplb-convert-"));

function file(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

const source = placementRows(initPt);
const shape = { layers: 4, experts: 16, gpus: 4, slots: 20 };

describe("eplb convert", () => {
  for (const format of OUTPUT_FORMATS) {
    test(`a torch SGLang init file -> ${format} -> read back: the same slots`, async () => {
      const out = join(tmp, `from-pt-${format}${outputFormatExtension(format)}`);
      const r = await cli([
        "convert",
        "--placement",
        initPt,
        "--output-format",
        format,
        "--gpus",
        "4",
        "--out",
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, new RegExp(`4 layers, 20 slots, 16 experts on 4 GPUs -> ${format}`));
      assert.deepEqual(placementRows(out), source);
    });
  }

  test("a chain through every format ends where it started", async () => {
    let current = initPt;
    for (const format of [...OUTPUT_FORMATS].reverse()) {
      const out = join(tmp, `chain-${format}${outputFormatExtension(format)}`);
      const r = await cli([
        "convert",
        "--placement",
        current,
        "--output-format",
        format,
        "--gpus",
        "4",
        "--out",
        out,
      ]);
      assert.equal(r.code, 0, r.stderr);
      current = out;
    }
    assert.deepEqual(placementRows(current), source);
  });

  test("the engines' loaders accept what convert writes", async () => {
    const run = async (format: string, extra: string[] = []) => {
      const r = await cli(["convert", "--placement", initPt, "--output-format", format, ...extra]);
      assert.equal(r.code, 0, r.stderr);
      return r.stdout;
    };
    assert.deepEqual(sglangLoad(await run("sglang"), shape).phy2log, source);
    assert.deepEqual(
      vllmAscendLoad(await run("vllm-ascend", ["--gpus", "4"]), shape).phy2log,
      source,
    );
    const yaml = await run("trtllm", ["--first-layer", "3"]);
    assert.deepEqual(trtllmLoad(yaml, shape, [3, 4, 5, 6]).phy2log, source);
  });

  test("vllm-ascend: the GPU count comes from a vllm-ascend input when --gpus is absent", async () => {
    const map = join(tmp, "map.json");
    assert.equal(
      (
        await cli([
          "convert",
          "--placement",
          initPt,
          "--output-format",
          "vllm-ascend",
          "--gpus",
          "5",
          "--out",
          map,
        ])
      ).code,
      0,
    );
    const r = await cli(["convert", "--placement", map, "--output-format", "vllm-ascend"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).layer_list[0].device_count, 5);
    assert.match(r.stderr, /on 5 GPUs -> vllm-ascend/);
  });

  test("vllm-ascend: a device holding an expert twice is refused in one line naming it", async () => {
    const p = file("dup.json", JSON.stringify({ phy2log: [[0, 1, 2, 3, 2, 2]] }));
    const r = await cli([
      "convert",
      "--placement",
      p,
      "--output-format",
      "vllm-ascend",
      "--gpus",
      "3",
      "--out",
      join(tmp, "never-written.json"),
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    assert.match(r.stderr, /layer 0, device 2\W+ holds expert 2 twice/);
    assert.match(r.stderr, /--output-format vllm-ascend/);
    assert.throws(() => readFileSync(join(tmp, "never-written.json")));
    // The same slots spread so that no device repeats an expert are written.
    const clean = await cli([
      "convert",
      "--placement",
      p,
      "--output-format",
      "vllm-ascend",
      "--gpus",
      "6",
    ]);
    assert.equal(clean.code, 0, clean.stderr);
    assert.doesNotMatch(clean.stderr, /warning/);
    const served = vllmAscendLoad(clean.stdout, { layers: 1, experts: 4, gpus: 6, slots: 6 });
    assert.deepEqual(served.phy2log, [[0, 1, 2, 3, 2, 2]]);
  });

  test("vllm-ascend input listing an expert twice on a device: read, with a warning that the engine serves it otherwise", async () => {
    const map = file(
      "dup-map.json",
      JSON.stringify({
        moe_layer_count: 2,
        layer_list: [
          {
            layer_id: 0,
            device_count: 2,
            device_list: [{ device_expert: [0, 1, 2] }, { device_expert: [3, 1, 2] }],
          },
          {
            layer_id: 1,
            device_count: 2,
            device_list: [{ device_expert: [0, 0, 1] }, { device_expert: [2, 3, 3] }],
          },
        ],
      }),
    );
    const r = await cli(["convert", "--placement", map, "--output-format", "sglang"]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).physical_to_logical_map[1], [0, 0, 1, 2, 3, 3]);
    const warnings = r.stderr.split("\n").filter((l) => l.startsWith("warning:"));
    assert.equal(warnings.length, 1, r.stderr);
    assert.match(
      warnings[0],
      /layer_list\[1\]\.device_list\[0\] lists expert 0 twice \(2 \(layer, device\) pairs in all\).*does not serve this map as written/,
    );
  });

  test("--experts declares experts the file's ids do not reach, and is checked", async () => {
    const p = file("p.json", JSON.stringify({ phy2log: [[0, 1, 2, 0]] }));
    const ok = await cli(["convert", "--placement", p, "--output-format", "vllm"]);
    assert.equal(JSON.parse(ok.stdout).logical_replica_count[0].length, 3);
    const missing = await cli([
      "convert",
      "--placement",
      p,
      "--output-format",
      "vllm",
      "--experts",
      "4",
    ]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /expert 3.*has no replica/);
  });

  test("--format forces the input format (a JSON placement with an odd extension)", async () => {
    const p = file("placement.txt", "0,1,2,0\n");
    const forced = file("placement.data", JSON.stringify({ phy2log: [[2, 1, 0, 0]] }));
    const r = await cli([
      "convert",
      "--placement",
      forced,
      "--format",
      "json",
      "--output-format",
      "sglang",
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).physical_to_logical_map, [[2, 1, 0, 0]]);
    const csv = await cli([
      "convert",
      "--placement",
      p,
      "--format",
      "csv",
      "--output-format",
      "sglang",
    ]);
    assert.equal(csv.code, 0, csv.stderr);
    assert.deepEqual(JSON.parse(csv.stdout).physical_to_logical_map, [[0, 1, 2, 0]]);
  });

  const p4 = file("p4.json", JSON.stringify({ phy2log: [[0, 1, 2, 0]] }));
  const mistakes: Array<[string, string[], RegExp]> = [
    ["missing --placement", ["convert", "--output-format", "sglang"], /--placement is required/],
    ["missing --output-format", ["convert", "--placement", p4], /--output-format is required/],
    [
      "unknown output format",
      ["convert", "--placement", p4, "--output-format", "onnx"],
      /--output-format \("onnx"\) must be one of deepseek, sglang, vllm, vllm-ascend, trtllm/,
    ],
    [
      "unknown input format",
      ["convert", "--placement", p4, "--output-format", "sglang", "--format", "xls"],
      /--format \("xls"\) must be one of/,
    ],
    [
      "--first-layer without trtllm",
      ["convert", "--placement", p4, "--output-format", "sglang", "--first-layer", "3"],
      /--first-layer applies to --output-format trtllm only/,
    ],
    [
      "vllm-ascend without a GPU count",
      ["convert", "--placement", p4, "--output-format", "vllm-ascend"],
      /vllm-ascend needs --gpus/,
    ],
    [
      "GPUs that do not divide the slots",
      ["convert", "--placement", p4, "--output-format", "trtllm", "--gpus", "3"],
      /numGpus \(3\) must divide the number of slots per layer \(4\)/,
    ],
    [
      "missing file",
      ["convert", "--placement", join(tmp, "nope.json"), "--output-format", "sglang"],
      /cannot read .*nope\.json: no such file/,
    ],
    [
      "invalid JSON",
      [
        "convert",
        "--placement",
        file("bad.json", '{"phy2log": [[0, 1'),
        "--output-format",
        "sglang",
      ],
      /invalid JSON/,
    ],
    [
      "a loads file instead of a placement",
      ["convert", "--placement", join(fixtures, "hotness.json"), "--output-format", "sglang"],
      /no placement found/,
    ],
    [
      "an empty slot (-1)",
      ["convert", "--placement", file("hole.json", "[[0, -1, 1, 0]]"), "--output-format", "sglang"],
      /-1/,
    ],
    [
      "a positional argument",
      ["convert", "extra", "--output-format", "sglang"],
      /unexpected argument "extra"/,
    ],
  ];
  for (const [name, argv, message] of mistakes) {
    test(`a user mistake (${name}): one line on stderr, nothing on stdout, exit 2`, async () => {
      const r = await cli(argv);
      assert.equal(r.code, 2, r.stderr);
      assert.equal(r.stdout, "");
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
    });
  }

  test("the real binary: exit 2 with one line and no stack trace", () => {
    const r = spawnCli([
      "convert",
      "--placement",
      file("bad2.json", "{"),
      "--output-format",
      "vllm",
    ]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(r.stderr.trimEnd().split("\n").length, 1);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  });

  test("--help names every output format and flag", async () => {
    const r = await cli(["convert", "--help"]);
    assert.equal(r.code, 0);
    for (const word of [
      ...OUTPUT_FORMATS,
      "--placement",
      "--gpus",
      "--experts",
      "--first-layer",
      "--out",
    ]) {
      assert.ok(r.stdout.includes(word), word);
    }
    assert.match((await cli(["--help"])).stdout, /convert +turn a placement file/);
  });
});

describe("eplb plan --output-format", () => {
  const loads = join(fixtures, "sglang-init-logical-count.json");
  const shapeArgs = ["--replicas", "20", "--groups", "4", "--nodes", "2", "--gpus", "4"];

  test("default deepseek output is unchanged; sglang holds the same phy2log and nothing else", async () => {
    const plain = await cli(["plan", "--loads", loads, ...shapeArgs]);
    const explicit = await cli([
      "plan",
      "--loads",
      loads,
      ...shapeArgs,
      "--output-format",
      "deepseek",
    ]);
    assert.equal(plain.code, 0, plain.stderr);
    const ds = JSON.parse(plain.stdout);
    assert.deepEqual(Object.keys(ds), ["phy2log", "log2phy", "logcnt", "metrics"]);
    const a = JSON.parse(explicit.stdout);
    assert.deepEqual({ ...a, metrics: undefined }, { ...ds, metrics: undefined });
    const sg = await cli(["plan", "--loads", loads, ...shapeArgs, "--output-format", "sglang"]);
    assert.deepEqual(JSON.parse(sg.stdout), { physical_to_logical_map: ds.phy2log });
    assert.match(sg.stderr, /balancedness/);
  });

  test("the SGLang workflow: recorder dump in, --init-expert-location file out", async () => {
    const out = join(tmp, "init.json");
    const dump = join(fixtures, "sglang-stat-dump-int64.pt");
    const r = await cli([
      "plan",
      "--loads",
      dump,
      ...shapeArgs,
      "--output-format",
      "sglang",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const text = readFileSync(out, "utf8");
    sglangLoad(text, shape);
    // The dump summed over its steps is the fixture's logical_count: the same plan.
    const fromCounts = await cli([
      "plan",
      "--loads",
      loads,
      ...shapeArgs,
      "--output-format",
      "sglang",
    ]);
    assert.equal(text, fromCounts.stdout);
  });

  test("--steps plans from a slice of the trace (negative starts accepted)", async () => {
    // A time-ordered trace: SGLang's stat dumps are ring buffers, refused with --steps.
    const dump = join(fixtures, "hotness-int64.npy");
    const last = await cli(["plan", "--loads", dump, ...shapeArgs, "--steps", "-4:"]);
    const same = await cli(["plan", "--loads", dump, ...shapeArgs, "--steps", "12:16"]);
    assert.equal(last.code, 0, last.stderr);
    assert.deepEqual(JSON.parse(last.stdout).phy2log, JSON.parse(same.stdout).phy2log);
    const all = await cli(["plan", "--loads", dump, ...shapeArgs]);
    assert.notDeepEqual(
      JSON.parse(last.stdout).metrics.after,
      JSON.parse(all.stdout).metrics.after,
    );
  });

  test("trtllm and vllm-ascend outputs load in their engines", async () => {
    const trt = await cli([
      "plan",
      "--loads",
      loads,
      ...shapeArgs,
      "--output-format",
      "trtllm",
      "--first-layer",
      "1",
    ]);
    assert.equal(trt.code, 0, trt.stderr);
    trtllmLoad(trt.stdout, shape, [1, 2, 3, 4]);
    const asc = await cli([
      "plan",
      "--loads",
      loads,
      ...shapeArgs,
      "--output-format",
      "vllm-ascend",
    ]);
    assert.equal(vllmAscendLoad(asc.stdout, shape).phy2log.length, 4);
  });

  test("a bad --output-format fails before any file is read", async () => {
    const r = await cli([
      "plan",
      "--loads",
      join(tmp, "absent.json"),
      ...shapeArgs,
      "--output-format",
      "x",
    ]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--output-format \("x"\)/);
    assert.equal(r.stdout, "");
  });
});
