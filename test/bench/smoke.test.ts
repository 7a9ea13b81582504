import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { benchBalanced } from "../../bench/balanced.js";
import { benchDeepseek } from "../../bench/deepseek.js";
import { benchEngines } from "../../bench/engines.js";
import { benchIoTable } from "../../bench/io.js";
import { benchMigration } from "../../bench/migration.js";
import { benchSchedule } from "../../bench/schedule.js";
import { benchSimulate } from "../../bench/simulate.js";

// Every benchmark runs here in quick mode (a few seconds each), so `npm run bench` cannot rot
// unnoticed. Only the shape of the report is checked: speed and quality figures are read by
// people, never asserted here.
const benches = [
  ["deepseek", benchDeepseek, /dsv3-prefill/],
  ["balanced", benchBalanced, /kimi-k2/],
  ["engines", benchEngines, /sglang/],
  ["io", benchIoTable, /npy/],
  ["migration", benchMigration, /dsv3-prefill/],
  ["simulate", benchSimulate, /deepseek re-planning/],
  ["schedule", benchSchedule, /dsv3-prefill/],
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
