import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lognormalLoads, makeTopology, planDeepseek, rebalanceExperts } from "../src/index.js";
import { SHAPES } from "./shapes.js";
import { medianMs } from "./timing.js";

const PYTHON = "/usr/bin/python3";

// Serves timings of the reference's rebalance_experts on loads given as JSON: each stdin line
// "i" runs case i once and prints its time in ms, "p i" prints case i's phy2log; the reference
// itself is loaded from the path given, never stored here. One process for the whole run, so
// its rounds interleave with eplb's and a change of the machine's load hits both sides alike.
const SERVER = `
import importlib.util, json, sys, time
import torch
spec = importlib.util.spec_from_file_location("eplb_reference", sys.argv[1])
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)
torch.set_num_threads(1)
cases = [(torch.tensor(c["weight"], dtype=torch.float64), c["shape"]) for c in json.load(open(sys.argv[2]))]
print("ready", flush=True)
for line in sys.stdin:
    words = line.split()
    weight, shape = cases[int(words[-1])]
    start = time.perf_counter()
    phy2log, _, _ = ref.rebalance_experts(weight, *shape)
    ms = 1000 * (time.perf_counter() - start)
    print(json.dumps(phy2log.tolist() if words[0] == "p" else ms), flush=True)
`;

/** A line-by-line conversation with the reference server. */
class ReferenceServer {
  private readonly child: ChildProcessWithoutNullStreams;
  private buffered = "";
  private waiting: Array<(line: string) => void> = [];
  private lines: string[] = [];
  private failure = "";

  constructor(reference: string, cases: string) {
    this.child = spawn(PYTHON, ["-c", SERVER, reference, cases]);
    this.child.stdout.setEncoding("utf8");
    this.child.stdout.on("data", (chunk: string) => {
      this.buffered += chunk;
      let at = this.buffered.indexOf("\n");
      while (at >= 0) {
        const line = this.buffered.slice(0, at);
        this.buffered = this.buffered.slice(at + 1);
        const next = this.waiting.shift();
        if (next) next(line);
        else this.lines.push(line);
        at = this.buffered.indexOf("\n");
      }
    });
    this.child.stderr.setEncoding("utf8");
    this.child.stderr.on("data", (chunk: string) => {
      this.failure += chunk;
    });
    this.child.on("close", () => {
      for (const next of this.waiting.splice(0)) next("");
    });
  }

  /** The next line the server prints ("" once it has exited; then `failure` says why). */
  next(): Promise<string> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.child.exitCode !== null) return Promise.resolve("");
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  async ask(command: string): Promise<unknown> {
    this.child.stdin.write(`${command}\n`);
    const line = await this.next();
    if (line === "") throw new Error(this.failure.trim() || "the reference exited");
    return JSON.parse(line);
  }

  get error(): string {
    return this.failure.trim();
  }

  close(): void {
    this.child.stdin.end();
    this.child.kill();
  }
}

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
 * lognormal loads: the reference's `rebalance_experts` (PyTorch, one thread, in a Python process
 * kept for the whole run) next to `rebalanceExperts` with the deepseek policy (the same
 * algorithm) and with the default policy, and the deepseek policy's own planning. The two sides
 * take turns, round after round (one reference call, then eplb's median of many calls), and the
 * speed-up is the median of the rounds' ratios, given with their range: a machine whose load
 * changes during the run moves both sides of a round alike. Skipped with a note where
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
  const input = join(dir, "cases.json");
  writeFileSync(
    input,
    JSON.stringify(
      cases.map(({ loads, shape: s }) => ({
        weight: Array.from({ length: s.layers }, (_, l) =>
          Array.from(loads.data.subarray(l * s.experts, (l + 1) * s.experts)),
        ),
        shape: [s.replicas, s.groups, s.nodes, s.gpus],
      })),
    ),
  );
  const server = new ReferenceServer(process.env.EPLB_REFERENCE as string, input);
  const rows = [
    "| shape | reference ms | rebalanceExperts deepseek ms | speed-up: median of rounds (range) | target | planDeepseek ms | drop-in / planning | + reading the nested arrays ms | rebalanceExperts default (balanced) ms | speed-up | same phy2log |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const targets: Record<string, number> = { "dsv3-prefill": 300, "kimi-k2": 1000 };
  const rounds = options.quick ? 1 : 7;
  const runs = options.quick ? 20 : 50;
  try {
    if ((await server.next()) !== "ready") {
      return `${title}\n\nSkipped: the reference failed: ${server.error}\n`;
    }
    for (const [i, { loads, shape: s }] of cases.entries()) {
      const topology = makeTopology(s.experts, s.replicas, s.groups, s.nodes, s.gpus);
      const args = [s.replicas, s.groups, s.nodes, s.gpus] as const;
      const dropIn = () => rebalanceExperts(loads, ...args, { policy: "deepseek" });
      const refPhy2log = await server.ask(`p ${i}`);
      const same = JSON.stringify(dropIn().phy2log) === JSON.stringify(refPhy2log);
      const refMs: number[] = [];
      const ourMs: number[] = [];
      const ratios: number[] = [];
      for (let r = 0; r < rounds; r++) {
        const ref = (await server.ask(`t ${i}`)) as number;
        const ours = medianMs(dropIn, runs);
        refMs.push(ref);
        ourMs.push(ours);
        ratios.push(ref / ours);
      }
      const plan = medianMs(() => planDeepseek(loads, topology), 4 * runs);
      const ours = medianMs(dropIn, 4 * runs);
      const read = medianMs(() => {
        const r = dropIn();
        return r.phy2log.length + r.log2phy.length + r.logcnt.length;
      }, 4 * runs);
      const balanced = medianMs(() => rebalanceExperts(loads, ...args), options.quick ? 5 : 30);
      const speedup = median(ratios);
      const target = targets[s.name];
      const range = `${Math.min(...ratios).toFixed(0)}-${Math.max(...ratios).toFixed(0)}x`;
      rows.push(
        `| ${s.name} | ${median(refMs).toFixed(0)} | ${median(ourMs).toFixed(3)} | ${speedup.toFixed(0)}x (${range}) | >= ${target}x ${Math.min(...ratios) >= target ? "met in every round" : speedup >= target ? "met (median)" : "MISSED"} | ${plan.toFixed(3)} | ${(ours / plan).toFixed(2)}x (<= 1.3x ${ours / plan <= 1.3 ? "met" : "MISSED"}) | ${read.toFixed(3)} | ${balanced.toFixed(2)} | ${(median(refMs) / balanced).toFixed(0)}x | ${same ? "yes" : "NO"} |`,
      );
    }
  } catch (error) {
    return `${title}\n\nSkipped: the reference failed: ${(error as Error).message}\n`;
  } finally {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return `${title}\n\n${rows.join("\n")}\n\nThe reference: ${process.env.EPLB_REFERENCE} run by ${PYTHON} (PyTorch, one thread) in one process for the run, timed with time.perf_counter. ${rounds} rounds per shape, each one reference call then eplb's median of ${runs} in-process calls; the speed-up is the median of the rounds' ratios (their range in brackets), the ms columns the medians of the rounds. The nested phy2log/log2phy/logcnt are built on first read; the column "+ reading" builds all three. Neither reads \`placement\`: reading it before the nested arrays takes a copy of the plan (0.19 MB on dsv3-prefill), so that editing it cannot change them.\n`;
}

function median(values: number[]): number {
  const v = [...values].sort((a, b) => a - b);
  const n = v.length;
  return n % 2 ? v[(n - 1) / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
