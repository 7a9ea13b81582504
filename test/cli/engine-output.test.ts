import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { firstGpuDuplicate } from "../../src/core/blocks/distinct.js";
import { readPlacement } from "../../src/io/read.js";
import { readTorch } from "../../src/io/torch.js";
import { cli, sharedDir } from "../helpers/cli.js";
import { placementRows } from "../helpers/placement-rows.js";
import { sglangLoad, vllmAscendLoad } from "../io/writers-engine-loaders.js";

const fixtures = join(sharedDir, "fixtures");
const tmp = mkdtempSync(join(tmpdir(), "eplb-engine-output-"));
const loads = join(fixtures, "sglang-init-logical-count.json");
const shapeArgs = ["--replicas", "20", "--groups", "4", "--nodes", "2", "--gpus", "4"];
const shape = { layers: 4, experts: 16, gpus: 4, slots: 20 };

/** `eplb plan` of the fixture loads on the fixture shape, with more flags. */
const plan = (...extra: string[]) => cli(["plan", "--loads", loads, ...shapeArgs, ...extra]);

function file(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

function oneLine(r: { code: number; stdout: string; stderr: string }): string {
  assert.equal(r.code, 2, r.stderr);
  assert.equal(r.stdout, "");
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  return r.stderr.trimEnd();
}

describe("SGLang: --out init.pt is a torch file", () => {
  test("eplb plan writes torch.save({physical_to_logical_map: int64}) equal to the JSON plan", async () => {
    const pt = join(tmp, "init.pt");
    const r = await plan("--output-format", "sglang", "--out", pt);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warning/);
    const json = await plan("--output-format", "sglang");
    const expected = JSON.parse(json.stdout).physical_to_logical_map;
    const bytes = readFileSync(pt);
    assert.equal(bytes.readUInt32LE(0), 0x04034b50, "a zip archive, as torch.save writes");
    const value = readTorch(bytes, pt) as Record<string, unknown>;
    assert.deepEqual(sglangLoad(value, shape).phy2log, expected);
    assert.deepEqual(placementRows(pt), expected);
  });

  test("eplb convert writes it too, and reads it back unchanged", async () => {
    const source = join(fixtures, "sglang-init-p2l.pt");
    const out = join(tmp, "converted.pt");
    const r = await cli([
      "convert",
      "--placement",
      source,
      "--output-format",
      "sglang",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(placementRows(out), placementRows(source));
  });

  test("an --out name SGLang would not read as a file is written with a warning", async () => {
    const out = join(tmp, "init.txt");
    const r = await plan("--output-format", "sglang", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /^warning: --out .*init\.txt ends in neither \.json nor \.pt: SGLang .* parses any other value as inline JSON$/m,
    );
    assert.ok(JSON.parse(readFileSync(out, "utf8")).physical_to_logical_map);
  });

  test("a .pt name for a format that is not a torch file is refused before any work", async () => {
    for (const format of ["deepseek", "vllm", "vllm-ascend", "trtllm"]) {
      const out = join(tmp, `x-${format}.pt`);
      const r = await cli([
        "plan",
        "--loads",
        join(tmp, "absent.json"),
        ...shapeArgs,
        "--output-format",
        format,
        "--out",
        out,
      ]);
      assert.match(
        oneLine(r),
        /--out .*\.pt: only --output-format sglang writes a torch \.pt file/,
      );
      assert.equal(existsSync(out), false);
    }
  });

  test("a torch file never goes to stdout", async () => {
    const r = await cli([
      "convert",
      "--placement",
      join(fixtures, "sglang-init-p2l.pt"),
      "--output-format",
      "sglang",
    ]);
    assert.equal(r.code, 0);
    assert.ok(JSON.parse(r.stdout).physical_to_logical_map, "JSON on stdout");
  });
});

describe("vllm-ascend: no device holds an expert twice", () => {
  // One hot expert over 12 slots on 2 GPUs: the deepseek policy puts it twice on a GPU.
  const hot = file("hot.json", JSON.stringify([[600, 10, 10, 10, 10, 10]]));
  const hotArgs = ["--replicas", "12", "--gpus", "2"];

  test("eplb plan --output-format vllm-ascend repairs the balanced plan; the engine routes it right", async () => {
    // A very skewed trace (lognormal sigma 1.5) on a DeepSeek-V3-like hierarchy: the balanced
    // plan keeps a few duplicates whose removal costs balance; vllm-ascend output removes them.
    const trace = join(tmp, "skewed.npy");
    const synth = await cli([
      "synth",
      "--steps",
      "10",
      "--layers",
      "58",
      "--experts",
      "256",
      "--sigma",
      "1.5",
      "--seed",
      "1",
      "--out",
      trace,
    ]);
    assert.equal(synth.code, 0, synth.stderr);
    const skewedArgs = ["--replicas", "288", "--gpus", "32", "--groups", "8", "--nodes", "4"];
    const plain = await cli(["plan", "--loads", trace, ...skewedArgs]);
    assert.equal(plain.code, 0, plain.stderr);
    const planned = readPlacement(file("plain.json", plain.stdout));
    assert.notEqual(firstGpuDuplicate(planned, 32), null, "the example must need the repair");
    const out = join(tmp, "expert_map.json");
    const r = await cli([
      "plan",
      "--loads",
      trace,
      ...skewedArgs,
      "--output-format",
      "vllm-ascend",
      "--out",
      out,
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /GPUs holding two replicas of one expert: 0/);
    const served = vllmAscendLoad(readFileSync(out, "utf8"), {
      layers: 58,
      experts: 256,
      gpus: 32,
      slots: 288,
    });
    assert.equal(served.collapsedDevices, 0);
  });

  test("the fixture plan loads in vllm-ascend for every (rank, expert)", async () => {
    const r = await plan("--output-format", "vllm-ascend");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(vllmAscendLoad(r.stdout, shape).collapsedDevices, 0);
    assert.equal(vllmAscendLoad(r.stdout, shape, 2).collapsedDevices, 0);
  });

  test("--policy deepseek with a duplicate is refused in one line naming layer and GPU", async () => {
    const out = join(tmp, "never.json");
    const r = await cli([
      "plan",
      "--loads",
      hot,
      ...hotArgs,
      "--policy",
      "deepseek",
      "--output-format",
      "vllm-ascend",
      "--out",
      out,
    ]);
    assert.match(
      oneLine(r),
      /^eplb plan: policy \("deepseek"\) puts expert 0 twice on GPU \d of layer 0 .*use the balanced policy \(--policy balanced\)$/,
    );
    assert.equal(existsSync(out), false);
    // Its plan in other formats is unchanged.
    const ds = await cli(["plan", "--loads", hot, ...hotArgs, "--policy", "deepseek"]);
    assert.equal(ds.code, 0, ds.stderr);
  });

  test("an --out name vllm-ascend refuses (not .json) is written with a warning", async () => {
    const out = join(tmp, "map.yaml");
    const r = await plan("--output-format", "vllm-ascend", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    assert.match(
      r.stderr,
      /^warning: --out .*map\.yaml does not end in \.json: vllm-ascend refuses/m,
    );
  });
});

describe("--help says what each output format is", () => {
  test("plan and convert name the files, the .pt writer and the vllm-ascend rule", async () => {
    for (const command of ["plan", "convert"]) {
      const help = (await cli([command, "--help"])).stdout;
      assert.match(help, /sglang {7}\{"physical_to_logical_map": \[layers, slots\]\}/);
      assert.match(help, /or a torch file when --out\s+ends in \.pt/);
      assert.match(help, /parses any other value as inline JSON/);
      assert.match(help, /no GPU may hold an expert twice/);
      assert.match(help, /MoE load balancer YAML for moe_config\.load_balancer/);
    }
  });
});
