/**
 * src/io/trtllm-statistics.ts: a TensorRT-LLM expert statistics folder (meta_info.json and one
 * rank{r}.safetensors per rank, as expert_statistic.py writes it) is read as TensorRT-LLM's
 * own example sums it: ranks added, iterations in time order, layers by model index. A folder
 * whose rows would not align is refused naming the file or folder and the rule.
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { placementFromPhy2log } from "../../src/core/model/placement.js";
import { EplbFormatError } from "../../src/io/errors.js";
import {
  describeTrtllmStatistics,
  isTrtllmStatisticsDir,
  readTrtllmStatistics,
} from "../../src/io/trtllm-statistics.js";
import { repoRoot } from "../helpers/cli.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";
import { encode, safetensorsBytes } from "./support.js";

// Made by test/fixtures/engines/make_vllm_trtllm_npz.py as expert_statistic.py writes them;
// expected.json holds the sums the script computed with torch.
const engines = join(repoRoot, "test", "fixtures", "engines");
const stats = join(engines, "trtllm", "stats");
const expected = JSON.parse(readFileSync(join(engines, "expected.json"), "utf8")) as Record<
  string,
  number[][]
>;
const { dir } = tempFiles("eplb-trtllm-stats-");

/** A statistics folder: meta_info.json and rank files of `"{iteration}_{layer}"` int64 counts. */
function folder(
  name: string,
  meta: unknown,
  ranks: Record<string, number[]>[],
  extraFiles: Record<string, string> = {},
): string {
  const path = join(dir, name);
  mkdirSync(path);
  writeFileSync(
    join(path, "meta_info.json"),
    typeof meta === "string" ? meta : JSON.stringify(meta),
  );
  ranks.forEach((records, r) => {
    const tensors = Object.entries(records).map(([key, counts]) => ({
      name: key,
      dtype: "I64",
      shape: [counts.length],
      data: encode("int64", counts),
    }));
    writeFileSync(join(path, `rank${r}.safetensors`), safetensorsBytes(tensors));
  });
  for (const [file, text] of Object.entries(extraFiles)) writeFileSync(join(path, file), text);
  return path;
}
const meta2 = { num_experts: 2, num_experts_per_token: 1 };

describe("readTrtllmStatistics on what expert_statistic.py writes", () => {
  test("summed: one step, ranks and iterations added, the info filled in", () => {
    const { trace, info } = readTrtllmStatistics(stats, { sum: true });
    assert.deepEqual([trace.steps, trace.layers, trace.experts], [1, 3, 8]);
    assert.deepEqual(Array.from(trace.data), expected["trtllm/stats"].flat());
    assert.deepEqual(
      { ...info, iterations: [...info.iterations], layerIds: [...info.layerIds] },
      {
        ranks: 2,
        iterations: [100, 101, 102, 103],
        totalIterations: 4,
        layerIds: [3, 4, 5],
        numExperts: 8,
        topK: 2,
        warnings: [],
      },
    );
  });

  test("as a trace: one step per iteration, and `steps` slices them in time order", () => {
    const all = readTrtllmStatistics(stats).trace;
    assert.equal(all.steps, 4);
    const sliced = readTrtllmStatistics(stats, { steps: "1:3" });
    assert.deepEqual(sliced.info.iterations, [101, 102]);
    const n = 3 * 8;
    const summed = new Array(n).fill(0);
    for (let k = 1; k < 3; k++) for (let i = 0; i < n; i++) summed[i] += all.data[k * n + i];
    assert.deepEqual(summed, expected["trtllm/stats#steps=1:3"].flat());
    assert.deepEqual(
      Array.from(readTrtllmStatistics(stats, { steps: "1:3", sum: true }).trace.data),
      summed,
    );
  });

  test("slot counts fold into experts by the placement they were recorded under, per layer", () => {
    const maps = [
      [0, 1, 2, 3, 4, 5, 0, 1],
      [5, 4, 3, 2, 1, 0, 5, 4],
      [0, 0, 1, 1, 2, 3, 4, 5],
    ];
    const slots = placementFromPhy2log(maps, 6);
    const { trace } = readTrtllmStatistics(stats, { sum: true, slots });
    assert.equal(trace.experts, 6);
    const want = expected["trtllm/stats"].flatMap((row, l) => {
      const out = [0, 0, 0, 0, 0, 0];
      row.forEach((v, s) => {
        out[maps[l][s]] += v;
      });
      return out;
    });
    assert.deepEqual(Array.from(trace.data), want);
    const map = maps[0];
    const wrong = placementFromPhy2log([map, map], 6);
    assertRefused(
      () => readTrtllmStatistics(stats, { slots: wrong }),
      EplbFormatError,
      `${stats}: the statistics have 3 layers x 8 slots but the slot placement has 2 layers x 8 slots`,
    );
  });

  test("isTrtllmStatisticsDir: a folder with meta_info.json, nothing else", () => {
    assert.equal(isTrtllmStatisticsDir(stats), true);
    assert.equal(isTrtllmStatisticsDir(join(stats, "rank0.safetensors")), false);
    assert.equal(isTrtllmStatisticsDir(engines), false);
    assert.equal(isTrtllmStatisticsDir(join(dir, "missing")), false);
  });
});

describe("readTrtllmStatistics: refusals and warnings", () => {
  test("meta_info.json must be an object with num_experts >= 1", () => {
    for (const [name, meta, shown] of [
      ["m0", { num_experts: 0 }, "0"],
      ["m1", { num_experts: "8" }, '"8"'],
      ["m2", {}, '"undefined"'],
      ["m3", { num_experts: 2.5 }, "2.5"],
    ] as const) {
      const path = folder(name, meta, [{ "0_0": [1] }]);
      assertRefused(
        () => readTrtllmStatistics(path),
        EplbFormatError,
        new RegExp(
          `^${path}/meta_info\\.json: num_experts is "?${shown.replace(/"/g, "")}"?: expected an integer >= 1$`,
        ),
      );
    }
    const arr = folder("m4", "[8]", [{ "0_0": [1] }]);
    assertRefused(
      () => readTrtllmStatistics(arr),
      EplbFormatError,
      `${arr}/meta_info.json: is not a JSON object`,
    );
  });

  test("rank files: at least one; records named {iteration}_{layer} of num_experts counts", () => {
    const none = folder("none", meta2, [], { "rank0_raw.safetensors": "" });
    assertRefused(
      () => readTrtllmStatistics(none),
      EplbFormatError,
      `${none}: holds meta_info.json but no rank{r}.safetensors file`,
    );
    const named = folder("named", meta2, [{ layer_0: [1, 2] }]);
    assertRefused(
      () => readTrtllmStatistics(named),
      EplbFormatError,
      `${named}/rank0.safetensors: tensor "layer_0" is not named "{iteration}_{layer}" as TensorRT-LLM's expert statistics are`,
    );
    const long = folder("long", meta2, [{ "0_0": [1, 2, 3] }]);
    assertRefused(
      () => readTrtllmStatistics(long),
      EplbFormatError,
      `${long}/rank0.safetensors: 0_0 has shape [3] but meta_info.json says num_experts 2`,
    );
    const empty = folder("empty", meta2, [{}]);
    assertRefused(
      () => readTrtllmStatistics(empty),
      EplbFormatError,
      `${empty}: the rank files hold no records (no iteration was recorded)`,
    );
  });

  test("negative counts are refused naming the record", () => {
    const neg = folder("neg", meta2, [{ "0_0": [1, -2] }]);
    assert.throws(
      () => readTrtllmStatistics(neg),
      (e: unknown) =>
        e instanceof EplbFormatError && e.message.startsWith(`${neg}/rank0.safetensors: 0_0`),
    );
  });

  test("ranks are read in numeric order and summed; a rank lacking records is a warning", () => {
    const ranks: Record<string, number[]>[] = [];
    for (let r = 0; r < 11; r++) ranks.push({ "5_2": [r, 1] });
    ranks[10]["6_2"] = [0, 0];
    for (let r = 0; r < 10; r++) ranks[r]["6_2"] = [1, 0];
    ranks[3] = { "5_2": [3, 1] }; // lacks 6_2
    const path = folder("eleven", meta2, ranks);
    const { trace, info } = readTrtllmStatistics(path, { sum: true });
    assert.deepEqual(Array.from(trace.data), [55 + 9, 11]);
    assert.equal(info.ranks, 11);
    assert.deepEqual(info.warnings, [
      "rank3.safetensors lacks 1 of the 2 (iteration, layer) counts the other ranks recorded; they count as 0 tokens from that rank",
    ]);
  });
});

describe("readTrtllmStatistics: order", () => {
  test("steps are iterations in time order, whatever order the file stores them in", () => {
    const path = folder("order", meta2, [{ "9_0": [9, 0], "8_0": [8, 0], "10_0": [10, 0] }]);
    const { trace, info } = readTrtllmStatistics(path);
    assert.deepEqual(info.iterations, [8, 9, 10]);
    assert.deepEqual(Array.from(trace.data), [8, 0, 9, 0, 10, 0]);
  });
});

describe("describeTrtllmStatistics", () => {
  const base = {
    ranks: 1,
    iterations: [7],
    totalIterations: 9,
    layerIds: [3],
    numExperts: 16,
    warnings: [],
  };

  test("one line: ranks, iterations, layers (ranges or the first few), experts, top-k", () => {
    assert.equal(
      describeTrtllmStatistics(base),
      "TensorRT-LLM statistics: 1 rank, iteration 7 (1 of 9), 1 MoE layers (model layers 3), 16 experts",
    );
    assert.equal(
      describeTrtllmStatistics({
        ...base,
        ranks: 2,
        iterations: [1, 2, 3],
        layerIds: [1, 3, 5],
        topK: 8,
      }),
      "TensorRT-LLM statistics: 2 ranks, iterations 1-3 (3 of 9), 3 MoE layers (model layers 1, 3, 5), 16 experts, top-8",
    );
    assert.match(
      describeTrtllmStatistics({ ...base, layerIds: [1, 3, 5, 7, 9, 11, 47] }),
      /7 MoE layers \(model layers 1, 3, 5, 7, \.\.\., 47\)/,
    );
    assert.match(
      describeTrtllmStatistics({ ...base, layerIds: [3, 4, 5, 6] }),
      /model layers 3-6\)/,
    );
  });
});
