import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** A standard deployment shape from ../shared/bench/reference.md. */
export interface Shape {
  name: string;
  layers: number;
  experts: number;
  replicas: number;
  groups: number;
  nodes: number;
  gpus: number;
}

/** The reference's published figures for one shape (same file). */
export interface ReferenceFigures {
  /** Time per full-model rebalance in ms: [low, high] of the published range. */
  timeMs: [number, number];
  balancedness: number;
  maxOverLowerBound: number;
  churnAfterDrift: number;
  duplicateGpus: number;
}

/** The standard shapes (kept in code so the bench runs without ../shared). */
export const SHAPES: Shape[] = [
  { name: "dsv3-prefill", layers: 58, experts: 256, replicas: 288, groups: 8, nodes: 4, gpus: 32 },
  { name: "dsv3-decode64", layers: 58, experts: 256, replicas: 320, groups: 8, nodes: 8, gpus: 64 },
  {
    name: "dsv3-decode144",
    layers: 58,
    experts: 256,
    replicas: 288,
    groups: 8,
    nodes: 18,
    gpus: 144,
  },
  {
    name: "dsv3-decode320",
    layers: 58,
    experts: 256,
    replicas: 320,
    groups: 8,
    nodes: 40,
    gpus: 320,
  },
  { name: "qwen3-235b", layers: 94, experts: 128, replicas: 144, groups: 1, nodes: 2, gpus: 16 },
  { name: "kimi-k2", layers: 60, experts: 384, replicas: 448, groups: 1, nodes: 8, gpus: 64 },
  {
    name: "kimi-k2-decode",
    layers: 60,
    experts: 384,
    replicas: 480,
    groups: 1,
    nodes: 12,
    gpus: 96,
  },
];

function parseTime(text: string): [number, number] | undefined {
  const m = /([\d.]+)(?: to ([\d.]+))? (ms|s)\b/.exec(text);
  if (!m) return undefined;
  const unit = m[3] === "s" ? 1000 : 1;
  const lo = Number(m[1]) * unit;
  return [lo, m[2] ? Number(m[2]) * unit : lo];
}

/**
 * The reference's measured figures per shape, parsed from `../shared/bench/reference.md` when it
 * is there (CI has it); an empty map otherwise.
 */
export function referenceFigures(): Map<string, ReferenceFigures> {
  const out = new Map<string, ReferenceFigures>();
  let text: string;
  try {
    text = readFileSync(
      fileURLToPath(new URL("../../../shared/bench/reference.md", import.meta.url)),
      "utf8",
    );
  } catch {
    return out;
  }
  for (const line of text.split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    const shape = SHAPES.find((s) => s.name === cells[1]);
    if (!shape || cells.length < 8) continue;
    const time = parseTime(cells[2]);
    if (!time) continue;
    out.set(shape.name, {
      timeMs: time,
      balancedness: Number.parseFloat(cells[3]),
      maxOverLowerBound: Number.parseFloat(cells[4]),
      churnAfterDrift: Number.parseFloat(cells[5]) / 100,
      duplicateGpus: Number.parseInt(cells[6], 10),
    });
  }
  return out;
}
