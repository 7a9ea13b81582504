import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lognormalLoads, makeTopology, planDeepseek, rebalanceExperts } from "../src/index.js";
import { SHAPES } from "./shapes.js";
import { medianMs } from "./timing.js";

const PYTHON = "/usr/bin/python3";

// Times the reference's rebalance_experts on loads given as JSON and prints the median seconds
// and its phy2log; the reference itself is loaded from the path given, never stored here.
const TIMER = `
import importlib.util, json, statistics, sys, time
import torch
spec = importlib.util.spec_from_file_location("eplb_reference", sys.argv[1])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
torch.set_num_threads(1)
out = []
for case in json.load(open(sys.argv[2])):
    weight = torch.tensor(case["weight"], dtype=torch.float64)
    times = []
    for _ in range(case["repeats"]):
        start = time.perf_counter()
        phy2log, _, _ = ref.rebalance_experts(weight, *case["shape"])
        times.append(time.perf_counter() - start)
    out.append({"ms": 1000 * statistics.median(times), "phy2log": phy2log.tolist()})
print(json.dumps(out))
`;

/** Why the side-by-side run cannot happen here, or null when it can. */
function missingReference(path: string | undefined): string | null {
  if (!path) return "EPLB_REFERENCE is not set (the path to DeepSeek's eplb.py)";
  if (!existsSync(path)) return `EPLB_REFERENCE=${path} does not exist`;
  const probe = spawnSync(PYTHON, ["-c", "import torch"], { encoding: "utf8" });
  if (probe.status !== 0) return `${PYTHON} cannot import torch`;
  return null;
}

/**
 * The public call against DeepSeek's `eplb.py` timed in the same run, on the same seeded
 * lognormal loads: the reference's `rebalance_experts` (PyTorch, one thread, median of several
 * runs in Python) next to `rebalanceExperts` with the deepseek policy (the same algorithm) and
 * with the default policy, and the deepseek policy's own planning. Skipped with a note where
 * `EPLB_REFERENCE=/path/to/eplb.py` is unset or torch is absent.
 */
export async function benchReference(options: { quick: boolean }): Promise<string> {
  const title =
    "## the public call vs DeepSeek's eplb.py in the same run, lognormal sigma 1.0, seed 20261129";
  const missing = missingReference(process.env.EPLB_REFERENCE);
  if (missing) return `${title}\n\nSkipped: ${missing}.\n`;
  const shapes = SHAPES.filter((s) => s.name === "dsv3-prefill" || s.name === "kimi-k2");
  const cases = shapes.map((s) => ({
    loads: lognormalLoads(s.layers, s.experts, 1.0, 20261129),
    shape: s,
  }));
  const dir = mkdtempSync(join(tmpdir(), "eplb-reference-"));
  let reference: Array<{ ms: number; phy2log: number[][] }>;
  try {
    const input = join(dir, "cases.json");
    writeFileSync(
      input,
      JSON.stringify(
        cases.map(({ loads, shape: s }) => ({
          weight: Array.from({ length: s.layers }, (_, l) =>
            Array.from(loads.data.subarray(l * s.experts, (l + 1) * s.experts)),
          ),
          shape: [s.replicas, s.groups, s.nodes, s.gpus],
          repeats: options.quick ? 1 : s.experts > 300 ? 3 : 5,
        })),
      ),
    );
    const run = spawnSync(PYTHON, ["-c", TIMER, process.env.EPLB_REFERENCE as string, input], {
      encoding: "utf8",
      maxBuffer: 1 << 28,
    });
    if (run.status !== 0)
      return `${title}\n\nSkipped: the reference failed: ${run.stderr.trim()}\n`;
    reference = JSON.parse(run.stdout);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = [
    "| shape | reference ms | rebalanceExperts deepseek ms | speed-up | target | planDeepseek ms | drop-in / planning | + reading the nested arrays ms | rebalanceExperts default (balanced) ms | speed-up | same phy2log |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const targets: Record<string, number> = { "dsv3-prefill": 300, "kimi-k2": 1000 };
  const runs = options.quick ? 20 : 200;
  cases.forEach(({ loads, shape: s }, i) => {
    const topology = makeTopology(s.experts, s.replicas, s.groups, s.nodes, s.gpus);
    const args = [s.replicas, s.groups, s.nodes, s.gpus] as const;
    const plan = medianMs(() => planDeepseek(loads, topology), runs);
    const dropIn = medianMs(() => rebalanceExperts(loads, ...args, { policy: "deepseek" }), runs);
    const read = medianMs(() => {
      const r = rebalanceExperts(loads, ...args, { policy: "deepseek" });
      return r.phy2log.length + r.log2phy.length + r.logcnt.length;
    }, runs);
    const balanced = medianMs(() => rebalanceExperts(loads, ...args), options.quick ? 5 : 30);
    const ref = reference[i];
    const same =
      JSON.stringify(rebalanceExperts(loads, ...args, { policy: "deepseek" }).phy2log) ===
      JSON.stringify(ref.phy2log);
    const speedup = ref.ms / dropIn;
    const target = targets[s.name];
    rows.push(
      `| ${s.name} | ${ref.ms.toFixed(0)} | ${dropIn.toFixed(3)} | ${speedup.toFixed(0)}x | >= ${target}x ${speedup >= target ? "met" : "MISSED"} | ${plan.toFixed(3)} | ${(dropIn / plan).toFixed(2)}x (<= 1.3x ${dropIn / plan <= 1.3 ? "met" : "MISSED"}) | ${read.toFixed(3)} | ${balanced.toFixed(2)} | ${(ref.ms / balanced).toFixed(0)}x | ${same ? "yes" : "NO"} |`,
    );
  });
  return `${title}\n\n${rows.join("\n")}\n\nThe reference: ${process.env.EPLB_REFERENCE} run by ${PYTHON} (PyTorch, one thread), median of ${options.quick ? 1 : "3-5"} runs timed with time.perf_counter; eplb: median of ${runs} in-process runs on a LoadMatrix. The nested phy2log/log2phy/logcnt are built on first read; the column "+ reading" builds all three.\n`;
}
