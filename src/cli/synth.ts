import { resolve } from "node:path";
import { synthTrace } from "../core/traces/synth.js";
import { OutputWriteError } from "../io/atomic-write.js";
import { type NpyWriteDType, NpyWriter } from "../io/npy-write.js";
import { integerFlag, numberFlag, parseFlags, requireString } from "./args.js";
import { type CliCommand, type CliContext, UsageError } from "./command.js";
import { ProgressBar } from "./simulate.js";

const DTYPES: readonly NpyWriteDType[] = ["int64", "float32", "float64"];

export const synthCommand: CliCommand = {
  name: "synth",
  summary: "write a seeded SYNTHETIC load trace (.npy) for users without data",
  help: `Usage: eplb synth --steps N --layers N --experts N --out FILE.npy [--seed N] [--sigma F]
                  [--drift F] [--tokens N] [--burst-rate F] [--burst-scale F] [--burst-steps N]
                  [--dtype int64|float32|float64]

Writes a synthetic load trace hotness[step, layer, expert] as a .npy file (the format public
EPLB simulators use), for trying eplb simulate without engine data. It is SYNTHETIC: per
layer, expert popularity is lognormal and drifts slowly (a mean-reverting walk of its log),
an expert sometimes bursts, and each step's token counts are sampled per expert (Poisson).
The same options and seed always give the same file.

Options:
  --steps N        steps (time)
  --layers N       MoE layers
  --experts N      logical experts per layer
  --out FILE       the .npy file to write
  --seed N         generator seed [default 1]
  --sigma F        popularity skew: lognormal sigma [default 1.0; about DeepSeek-R1's skew]
  --drift F        per-step std of the log-popularity change [default 0.01: ~10% per 100 steps]
  --tokens N       token-to-expert assignments per layer per step [default 32768]
  --burst-rate F   chance per layer and step that an expert bursts [default 0.002]
  --burst-scale F  popularity multiplier during a burst [default 4]
  --burst-steps N  length of a burst in steps [default 50]
  --dtype T        element type: int64 (counts, as SGLang records them), float32, float64
                   [default int64]
  -h, --help       this help

Example:
  eplb synth --steps 2000 --layers 58 --experts 256 --seed 1 --out trace.npy
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
    });
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
    let writer: NpyWriter;
    try {
      writer = new NpyWriter(resolve(ctx.cwd, out), dtype as NpyWriteDType, [
        steps,
        layers,
        experts,
      ]);
    } catch (error) {
      if (error instanceof OutputWriteError) {
        throw new UsageError(`cannot write ${out}: ${error.reason}`);
      }
      throw error;
    }
    const n = layers * experts;
    // Steps are written in batches so each write call moves a few MB, not 60 KB.
    const batch = Math.max(1, Math.min(steps, Math.floor(4_000_000 / n)));
    const buf = new Float64Array(batch * n);
    const bar = new ProgressBar(ctx, "steps");
    try {
      for (let t = 0; t < steps; t += batch) {
        const len = Math.min(batch, steps - t);
        for (let j = 0; j < len; j++) trace.readStep(t + j, buf, j * n);
        writer.write(len === batch ? buf : buf.subarray(0, len * n));
        bar.update(t + len, steps);
      }
      writer.close();
    } catch (error) {
      writer.abort();
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
