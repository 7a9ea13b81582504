/**
 * src/cli/placement-output.ts: `--output-format`, `--first-layer` and `--out` decide what file a
 * command writes; every combination an engine would not read is refused or warned about before
 * any work, and what is written reads back as the same placement.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { CliContext } from "../../src/cli/command.js";
import { UsageError } from "../../src/cli/command.js";
import {
  outputFormatFlag,
  PLACEMENT_OUTPUT_HELP,
  renderPlacement,
} from "../../src/cli/placement-output.js";
import { rebalanceExperts } from "../../src/index.js";
import { readPlacement } from "../../src/io/read.js";
import { OUTPUT_FORMATS } from "../../src/io/writers.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";

const { file } = tempFiles("eplb-placement-output-");

function context(): CliContext & { err: string[] } {
  const err: string[] = [];
  return {
    err,
    stdout: () => {},
    stderr: (t) => {
      err.push(t);
    },
    stderrIsTTY: false,
    cwd: process.cwd(),
  };
}

const usage = (fn: () => unknown, message: RegExp) => assertRefused(fn, UsageError, message);

// 2 layers of 4 experts on 8 slots of 4 GPUs.
const { placement } = rebalanceExperts(
  [
    [10, 40, 20, 30],
    [5, 5, 60, 30],
  ],
  8,
  1,
  1,
  4,
);

describe("outputFormatFlag", () => {
  test("deepseek by default; every documented format is accepted", () => {
    assert.equal(outputFormatFlag({}), "deepseek");
    for (const f of OUTPUT_FORMATS) {
      assert.equal(outputFormatFlag({ "output-format": f }), f);
      assert.match(PLACEMENT_OUTPUT_HELP, new RegExp(`^ {19}${f} `, "m"), `${f} in the help`);
    }
  });

  test("an unknown format is refused, listing the formats", () => {
    usage(
      () => outputFormatFlag({ "output-format": "onnx" }),
      new RegExp(`^--output-format \\("onnx"\\) must be one of ${OUTPUT_FORMATS.join(", ")}$`),
    );
  });

  test("--first-layer applies to trtllm only, and must be an integer >= 0", () => {
    usage(
      () => outputFormatFlag({ "output-format": "sglang", "first-layer": "3" }),
      /^--first-layer applies to --output-format trtllm only$/,
    );
    usage(() => outputFormatFlag({ "first-layer": "3" }), /trtllm only/);
    usage(
      () => outputFormatFlag({ "output-format": "trtllm", "first-layer": "-1" }),
      /^--first-layer \("-1"\) must be an integer >= 0$/,
    );
    assert.equal(outputFormatFlag({ "output-format": "trtllm", "first-layer": "3" }), "trtllm");
  });

  test("a .pt --out is refused for every format but sglang", () => {
    usage(
      () => outputFormatFlag({ out: "plan.pt" }),
      /^--out plan\.pt: only --output-format sglang writes a torch \.pt file \(deepseek is JSON\)$/,
    );
    usage(() => outputFormatFlag({ "output-format": "trtllm", out: "p.pt" }), /\(trtllm is YAML\)/);
    assert.equal(outputFormatFlag({ "output-format": "sglang", out: "p.pt" }), "sglang");
  });
});

describe("renderPlacement", () => {
  test("every format's text reads back as the same placement", () => {
    for (const format of OUTPUT_FORMATS) {
      const ext = format === "trtllm" ? "yaml" : "json";
      const ctx = context();
      const text = renderPlacement(placement, { "output-format": format }, { numGpus: 4 }, ctx);
      assert.equal(typeof text, "string");
      const back = readPlacement(file(`p.${ext}`, text), { numExperts: 4 });
      assert.deepEqual(Array.from(back.phy2log), Array.from(placement.phy2log), format);
      assert.deepEqual(ctx.err, [], format);
    }
  });

  test("sglang with a .pt --out writes a torch file SGLang loads", () => {
    const bytes = renderPlacement(
      placement,
      { "output-format": "sglang", out: "init.pt" },
      {},
      context(),
    );
    assert.ok(bytes instanceof Uint8Array);
    const back = readPlacement(file("init.pt", bytes), { numExperts: 4 });
    assert.deepEqual(Array.from(back.phy2log), Array.from(placement.phy2log));
  });

  test("trtllm keys layers by model index from --first-layer", () => {
    const yaml = renderPlacement(
      placement,
      { "output-format": "trtllm", "first-layer": "3" },
      { numGpus: 4 },
      context(),
    ) as string;
    assert.match(yaml, /^ {2}3: \[/m);
    assert.match(yaml, /^ {2}4: \[/m);
    assert.doesNotMatch(yaml, /^ {2}0: \[/m);
  });

  test("vllm-ascend needs --gpus", () => {
    usage(
      () => renderPlacement(placement, { "output-format": "vllm-ascend" }, {}, context()),
      /^--output-format vllm-ascend needs --gpus/,
    );
  });

  test("an --out name the engine would not read as a file is written, with a warning", () => {
    const sglang = context();
    renderPlacement(placement, { "output-format": "sglang", out: "init.txt" }, {}, sglang);
    assert.equal(sglang.err.length, 1);
    assert.match(
      sglang.err[0],
      /^warning: --out init\.txt ends in neither \.json nor \.pt: SGLang/,
    );
    const ascend = context();
    renderPlacement(
      placement,
      { "output-format": "vllm-ascend", out: "map.yaml" },
      { numGpus: 4 },
      ascend,
    );
    assert.match(ascend.err[0], /^warning: --out map\.yaml does not end in \.json: vllm-ascend/);
    const fine = context();
    renderPlacement(placement, { "output-format": "sglang", out: "init.json" }, {}, fine);
    renderPlacement(
      placement,
      { "output-format": "vllm-ascend", out: "m.json" },
      { numGpus: 4 },
      fine,
    );
    assert.deepEqual(fine.err, []);
  });
});
