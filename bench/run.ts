// `npm run bench [-- --quick] [-- --only NAME]`: every benchmark of the project, printed as
// markdown. Figures are ratios against baselines measured in the same process, since these
// machines are noisy.
import { parseArgs } from "node:util";
import { benchBalanced } from "./balanced.js";
import { benchDeepseek } from "./deepseek.js";
import { benchEngines } from "./engines.js";
import { benchIoTable } from "./io.js";
import { benchMigration } from "./migration.js";
import { benchReference } from "./reference.js";
import { benchSchedule } from "./schedule.js";
import { benchSimulate } from "./simulate.js";

type Bench = (options: { quick: boolean }) => Promise<string>;

const benches: Array<[string, Bench]> = [
  ["deepseek", benchDeepseek],
  ["balanced", benchBalanced],
  ["engines", benchEngines],
  ["io", benchIoTable],
  ["migration", benchMigration],
  ["simulate", benchSimulate],
  ["schedule", benchSchedule],
  ["reference", benchReference],
];

const { values } = parseArgs({
  options: { quick: { type: "boolean", default: false }, only: { type: "string", multiple: true } },
});
const only = values.only as string[] | undefined;
for (const [name, bench] of benches) {
  if (only && !only.includes(name)) continue;
  const start = performance.now();
  process.stdout.write(
    `${await bench({ quick: Boolean(values.quick) })}\n(${name}: ${((performance.now() - start) / 1000).toFixed(1)} s)\n\n`,
  );
}
