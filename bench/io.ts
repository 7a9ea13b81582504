// Reading a realistic recorder trace, [512 steps, 58 layers, 256 experts] int64 (~60 MB, the
// DeepSeek-V3 shape), from each binary format: whole-file read + parse + decode to Float64Array.
// Run alone with `npx tsc -p tsconfig.json && node dist/bench/io.js`.
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Random } from "../src/core/blocks/random.js";
import { readLoads, readTrace } from "../src/io/read.js";
import { npyBytes, safetensorsBytes, torchDictOfTensor } from "../test/io/support.js";
import { medianMs } from "./timing.js";

const SHAPE = [512, 58, 256] as const;

/** int64 little-endian counts, written as 32-bit halves (the values are small and >= 0). */
function syntheticCounts(): Uint8Array {
  const n = SHAPE[0] * SHAPE[1] * SHAPE[2];
  const words = new Int32Array(2 * n);
  const rng = new Random(20261129);
  for (let i = 0; i < n; i++) words[2 * i] = Math.floor(rng.lognormal(1) * 300);
  return new Uint8Array(words.buffer);
}

function npyFile(data: Uint8Array): Uint8Array {
  // With no values the test writer emits just the header; splice the 60 MB of raw bytes after it
  // rather than encoding 7.6M numbers one by one.
  const header = npyBytes("<i8", [...SHAPE], []);
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

/**
 * The benchmark as a markdown table (the shape `bench/run.ts` expects): median time and
 * throughput of `readTrace` and `readLoads` per format, against the 1 s target.
 */
export async function benchIoTable(options: { quick: boolean }): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "eplb-bench-io-"));
  try {
    const data = syntheticCounts();
    const numel = SHAPE[0] * SHAPE[1] * SHAPE[2];
    const view = { offset: 0, size: [...SHAPE], stride: [SHAPE[1] * SHAPE[2], SHAPE[2], 1] };
    const files: [string, string, Uint8Array][] = [
      ["npy", "trace.npy", npyFile(data)],
      [
        "pt (torch.save zip)",
        "trace.pt",
        torchDictOfTensor("logical_count", "LongStorage", data, numel, view),
      ],
      [
        "safetensors",
        "trace.safetensors",
        safetensorsBytes([{ name: "logical_count", dtype: "I64", shape: [...SHAPE], data }]),
      ],
    ];
    const runs = options.quick ? 3 : 9;
    const rows = [
      "| format | file MB | readTrace ms (median) | MB/s | readLoads ms (sum over steps) | target < 1000 ms |",
      "| --- | --- | --- | --- | --- | --- |",
    ];
    for (const [label, name, bytes] of files) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const mb = statSync(path).size / 1e6;
      const check = readTrace(path);
      if (
        check.steps !== SHAPE[0] ||
        check.data[5] !== Number(new BigInt64Array(data.buffer, 40, 1)[0])
      ) {
        throw new Error(`${name}: benchmark file read back wrong`);
      }
      const trace = medianMs(() => readTrace(path), runs);
      const loads = medianMs(() => readLoads(path), runs);
      rows.push(
        `| ${label} | ${mb.toFixed(1)} | ${trace.toFixed(1)} | ${Math.round(mb / (trace / 1000))} | ${loads.toFixed(1)} | ${trace < 1000 ? "met" : "MISSED"} |`,
      );
    }
    return `## io: reading a [${SHAPE.join(", ")}] int64 trace\n\n${rows.join("\n")}\n\nWhole call: readFileSync (page cache), format parse, int64 -> Float64Array decode, checks (finite, >= 0).\n`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Prints the io benchmark table to stdout.
 *
 * @example
 * ```ts
 * await benchIo(); // | npy | 60.8 | 45.1 | 1348 | ... |
 * ```
 */
export async function benchIo(): Promise<void> {
  process.stdout.write(`${await benchIoTable({ quick: false })}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await benchIo();
