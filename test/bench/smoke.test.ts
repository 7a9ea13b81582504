import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { benchBalanced } from "../../bench/balanced.js";
import { benchDeepseek } from "../../bench/deepseek.js";
import { benchEngines } from "../../bench/engines.js";
import { benchIoTable } from "../../bench/io.js";

// The benchmarks that take a few seconds in quick mode run here, so `npm run bench` cannot rot
// unnoticed (migration and simulate take 20-45 s even in quick mode and are left to the bench).
// Only the shape of the report is checked: speed and quality figures are read by people, never
// asserted here.
const benches = [
  ["deepseek", benchDeepseek, /dsv3-prefill/],
  ["balanced", benchBalanced, /kimi-k2/],
  ["engines", benchEngines, /sglang/],
  ["io", benchIoTable, /npy/],
] as const;

describe("benchmarks (quick mode) produce their markdown tables", () => {
  for (const [name, bench, mentions] of benches) {
    test(name, async () => {
      const report = await bench({ quick: true });
      assert.match(report, /^\| .* \|$/m, "a markdown table");
      assert.match(report, mentions);
      assert.doesNotMatch(report, /NaN|undefined/);
    });
  }
});
