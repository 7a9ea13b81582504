import { resolve } from "node:path";
import { synthTrace } from "../core/traces/synth.js";
import { synthRouting } from "../core/traces/synth-routing.js";
import { OutputWriteError } from "../io/atomic-write.js";
import type { NpyWriteDType } from "../io/npy-write.js";
import { NpyWriter } from "../io/npy-write.js";
import { writeTraceNpy } from "../pipeline/write.js";
import { type Flags, integerFlag, numberFlag, parseFlags, requireString } from "./args.js";
import { type CliCommand, type CliContext, UsageError } from "./command.js";
import { ProgressBar } from "./simulate.js";

const DTYPES: readonly NpyWriteDType[] = ["int64", "float32", "float64"];

export const synthCommand: CliCommand = {
  name: "synth",
  summary: "write a seeded SYNTHETIC load trace (.npy) for users without data",
  help: `Usage: eplb synth --steps N --layers N --experts N --out FILE.npy [--seed N] [--sigma F]
                  [--drift F] [--tokens N] [--burst-rate F] [--burst-scale F] [--burst-steps N]
                  [--dtype int64|float32|float64]
       eplb synth --routing FILE.npy --tokens N --layers N --experts N --k N [--steps N]
                  [--seed N] [--clusters N] [--affinity F] [--sigma F] [--drift F]

Writes a synthetic load trace hotness[step, layer, expert] as a .npy file (the format public
EPLB simulators use), for trying eplb simulate without engine data. It is SYNTHETIC: per
layer, expert popularity is lognormal and drifts slowly (a mean-reverting walk of its log),
an expert sometimes bursts, and each step's token counts are sampled per expert (Poisson).
The same options and seed always give the same file.

With --routing it writes SYNTHETIC per-token routing instead: int64 expert ids
[tokens, layers, k] (or [steps, tokens, layers, k] with --steps), the input of
eplb plan --routing. In every layer the experts are split at random into --clusters
co-activated sets; each token picks a set (by popularity) and draws each of its k
experts from it with probability --affinity, else from all experts; popularity is
lognormal(--sigma) and drifts by --drift per step.

Options:
  --routing FILE   write synthetic routing (.npy) instead of a load trace
  --k N            routing: experts per token per layer (top-k)
  --clusters N     routing: co-activated sets per layer [default 8]
  --affinity F     routing: chance a choice comes from the token's set [default 0.8]
  --steps N        steps (time)
  --layers N       MoE layers
  --experts N      logical experts per layer
  --out FILE       the .npy file to write
  --seed N         generator seed [default 1]
  --sigma F        popularity skew: lognormal sigma [default 1.0; about DeepSeek-R1's skew]
  --drift F        per-step std of the log-popularity change [default 0.01: ~10% per 100 steps]
  --tokens N       token-to-expert assignments per layer per step [default 32768];
                   routing: tokens (per step)
  --burst-rate F   chance per layer and step that an expert bursts [default 0.002]
  --burst-scale F  popularity multiplier during a burst [default 4]
  --burst-steps N  length of a burst in steps [default 50]
  --dtype T        element type: int64 (counts, as SGLang records them), float32, float64
                   [default int64]
  -h, --help       this help

Example:
  eplb synth --steps 2000 --layers 58 --experts 256 --seed 1 --out trace.npy
  eplb synth --routing routing.npy --tokens 20000 --layers 4 --experts 64 --k 6 --seed 1
`,
  async run(argv: string[], ctx: CliContext): Promise<void> {
    const flags = parseFlags("synth", argv, {
      steps: { type: "string" },
      layers: { type: "string" },
      experts: { type: "string" },
      out: { type: "string" },
      seed: { type: "string" },
      sigma: { type: "string" },
      drift: { type: "string" },
      tokens: { type: "string" },
      "burst-rate": { type: "string" },
      "burst-scale": { type: "string" },
      "burst-steps": { type: "string" },
      dtype: { type: "string" },
      routing: { type: "string" },
      k: { type: "string" },
      clusters: { type: "string" },
      affinity: { type: "string" },
    });
    if (typeof flags.routing === "string") return writeRouting(flags, ctx);
    for (const name of ["k", "clusters", "affinity"]) {
      if (flags[name] !== undefined) throw new UsageError(`--${name} needs --routing`);
    }
    const out = requireString(flags, "out");
    const dtype = (flags.dtype as string | undefined) ?? "int64";
    if (!(DTYPES as readonly string[]).includes(dtype)) {
      throw new UsageError(
        `--dtype (${JSON.stringify(dtype)}) must be one of ${DTYPES.join(", ")}`,
      );
    }
    const trace = synthTrace({
      steps: integerFlag(flags, "steps", 1),
      layers: integerFlag(flags, "layers", 1),
      experts: integerFlag(flags, "experts", 1),
      seed: integerFlag(flags, "seed", 0, 1),
      sigma: numberFlag(flags, "sigma", 0, 10, 1),
      drift: numberFlag(flags, "drift", 0, 10, 0.01),
      tokens: integerFlag(flags, "tokens", 0, 32768),
      burstRate: numberFlag(flags, "burst-rate", 0, 1, 0.002),
      burstScale: numberFlag(flags, "burst-scale", 0, 1e6, 4),
      burstSteps: integerFlag(flags, "burst-steps", 1, 50),
    });
    const { steps, layers, experts } = trace;
    const bar = new ProgressBar(ctx, "steps");
    try {
      writeTraceNpy(trace, resolve(ctx.cwd, out), dtype as NpyWriteDType, (d, t) =>
        bar.update(d, t),
      );
    } catch (error) {
      if (error instanceof OutputWriteError) {
        throw new UsageError(`cannot write ${out}: ${error.reason}`);
      }
      throw error;
    }
    bar.done();
    ctx.stdout(`eplb synth: wrote ${out} [${steps}, ${layers}, ${experts}] ${dtype}\n`);
    ctx.stdout(`${trace.description}\n`);
  },
};

/** `eplb synth --routing`: synthetic routing written step by step to an int64 .npy. */
function writeRouting(flags: Flags, ctx: CliContext): void {
  const out = flags.routing as string;
  for (const name of ["out", "burst-rate", "burst-scale", "burst-steps", "dtype"]) {
    if (flags[name] !== undefined) throw new UsageError(`--${name} does not apply to --routing`);
  }
  const stepsGiven = flags.steps !== undefined;
  const src = synthRouting({
    tokens: integerFlag(flags, "tokens", 1),
    layers: integerFlag(flags, "layers", 1),
    experts: integerFlag(flags, "experts", 1),
    k: integerFlag(flags, "k", 1),
    steps: stepsGiven ? integerFlag(flags, "steps", 1) : 1,
    seed: integerFlag(flags, "seed", 0, 1),
    clusters: flags.clusters === undefined ? undefined : integerFlag(flags, "clusters", 1),
    affinity: numberFlag(flags, "affinity", 0, 1, 0.8),
    sigma: numberFlag(flags, "sigma", 0, 10, 1),
    drift: numberFlag(flags, "drift", 0, 10, 0.01),
  });
  const o = src.options;
  const shape = stepsGiven ? [o.steps, o.tokens, o.layers, o.k] : [o.tokens, o.layers, o.k];
  try {
    const writer = new NpyWriter(resolve(ctx.cwd, out), "int64", shape);
    try {
      for (let t = 0; t < o.steps; t++) writer.write(src.readStep(t).topk);
      writer.close();
    } catch (error) {
      writer.abort();
      throw error;
    }
  } catch (error) {
    if (error instanceof OutputWriteError) {
      throw new UsageError(`cannot write ${out}: ${error.reason}`);
    }
    throw error;
  }
  ctx.stdout(`eplb synth: wrote ${out} [${shape.join(", ")}] int64 routing\n`);
  ctx.stdout(`${src.description}\n`);
}
