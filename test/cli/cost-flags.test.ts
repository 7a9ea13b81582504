import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../../src/cli/command.js";
import { costFlags } from "../../src/cli/cost-flags.js";

describe("cost flags", () => {
  test("no cost flag: null", () => {
    assert.equal(costFlags({ gpus: "8" }), null);
  });

  test("presets: bytes from --model, links from --hardware, tokenUs from both", () => {
    const m = costFlags({ model: "deepseek-v3", hardware: "h800" });
    assert.deepEqual(
      { ...m, tokenUs: Number(m?.tokenUs.toFixed(6)) },
      {
        expertBytes: 44_050_944,
        intraGbps: 1600,
        interGbps: 400,
        tokenUs: 0.089015,
        expertLoadUs: 0,
      },
    );
  });

  test("explicit flags override presets", () => {
    const m = costFlags({
      model: "kimi-k2",
      hardware: "h100",
      "expert-bytes": "1e6",
      "link-gbps": "800,100",
      "token-us": "0.5",
      "expert-load-us": "3",
    });
    assert.deepEqual(
      { ...m },
      { expertBytes: 1e6, intraGbps: 800, interGbps: 100, tokenUs: 0.5, expertLoadUs: 3 },
    );
    assert.ok(
      Math.abs(
        (costFlags({ model: "deepseek-v3", hardware: "h800", "expert-load-us": "auto" })
          ?.expertLoadUs ?? 0) - 13.1495,
      ) < 1e-4,
    );
  });

  const refusals: Array<[Record<string, string>, string]> = [
    [{ model: "deepseek-v3" }, "--link-gbps or --hardware is needed with --model"],
    [{ hardware: "h800" }, "--expert-bytes or --model is needed with --hardware"],
    [
      { "expert-bytes": "1e6", "link-gbps": "1,1" },
      "--token-us, or --model with --hardware, is needed with --expert-bytes",
    ],
    [
      { model: "llama", hardware: "h800" },
      '--model ("llama") is not a known preset; known: deepseek-v3, deepseek-r1, kimi-k2, qwen3-235b-a22b',
    ],
    [
      { model: "kimi-k2", hardware: "a100" },
      '--hardware ("a100") is not a known preset; known: h100, h800, h200',
    ],
    [
      { model: "kimi-k2", "link-gbps": "1600" },
      '--link-gbps ("1600") must be INTRA,INTER: two numbers > 0 in Gb/s, e.g. 1600,400',
    ],
    [{ model: "kimi-k2", "link-gbps": "1600,0" }, '--link-gbps ("0") must be a number > 0'],
    [{ "expert-bytes": "-5", hardware: "h800" }, '--expert-bytes ("-5") must be a number > 0'],
    [
      { model: "kimi-k2", hardware: "h800", "token-us": "x" },
      '--token-us ("x") must be a number >= 0',
    ],
    [
      { model: "kimi-k2", "link-gbps": "1,1", "token-us": "1", "expert-load-us": "auto" },
      "--expert-load-us auto needs --hardware (its HBM bandwidth)",
    ],
  ];
  for (const [flags, message] of refusals) {
    test(`refused in one line: ${message}`, () => {
      assert.throws(
        () => costFlags(flags),
        (error: unknown) => {
          assert.ok(error instanceof UsageError);
          assert.equal(error.message, message);
          return true;
        },
      );
    });
  }

  test("requireCompute: false (transfer pricing only) leaves tokenUs 0 when nothing gives it", () => {
    assert.equal(
      costFlags({ model: "kimi-k2", "link-gbps": "1600,400" }, { requireCompute: false })?.tokenUs,
      0,
    );
  });
});
