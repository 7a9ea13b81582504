// Seeded migration cases whose exact outputs are recorded in
// test/fixtures/migration/differential.json, so that a faster migration can be proven to return
// the same placements, layer outcomes and metrics bit for bit. Regenerate (only when a change of
// results is intended) with `npm run build && node dist/test/helpers/migration-cases.js --write`.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { MigrationWorkspace, migrateLayer, resolveMigrationSettings } from "../../src/blocks.js";
import {
  createPlacement,
  type LoadMatrix,
  lognormalLoads,
  type MigrationOptions,
  makeTopology,
  migratePlacement,
  type Placement,
  planBalanced,
  planDeepseek,
  Random,
  type Topology,
} from "../../src/index.js";
import { repoRoot } from "./cli.js";

/** Where the recorded outputs live. */
export const differentialFixture = join(
  repoRoot,
  "test",
  "fixtures",
  "migration",
  "differential.json",
);

/** One case's recorded output: a hash of everything it returns and two readable figures. */
export interface CaseRecord {
  name: string;
  hash: string;
  slotsChanged: number;
  afterOverFresh: number;
}

/** FNV-1a over a string: any change of a placement or a float's digits changes it. */
function fnv(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, "0");
}

function drift(loads: LoadMatrix, rng: Random, sigma: number, zeroShare = 0): LoadMatrix {
  const data = new Float64Array(loads.data.length);
  for (let i = 0; i < data.length; i++) {
    data[i] = rng.next() < zeroShare ? 0 : Math.round(loads.data[i] * rng.lognormal(sigma));
  }
  return { layers: loads.layers, experts: loads.experts, data };
}

function integerLoads(layers: number, experts: number, seed: number, zeroShare: number) {
  const rng = new Random(seed);
  const data = new Float64Array(layers * experts);
  // Rounded loads: ties, which decide orders and tie-breaks, are frequent.
  for (let i = 0; i < data.length; i++) {
    data[i] = rng.next() < zeroShare ? 0 : Math.floor(20 * rng.lognormal(1));
  }
  return { layers, experts, data } as LoadMatrix;
}

/** JSON of a whole migration: JSON numbers round-trip doubles exactly. */
function chainRecord(
  name: string,
  topology: Topology,
  start: LoadMatrix,
  steps: number,
  seed: number,
  options: MigrationOptions,
  plan: (loads: LoadMatrix, t: Topology) => Placement,
): CaseRecord {
  const rng = new Random(seed);
  let previous: Placement = plan(start, topology);
  let loads = start;
  let text = "";
  let slotsChanged = 0;
  let afterOverFresh = 0;
  for (let step = 0; step < steps; step++) {
    loads = drift(loads, rng, 0.3);
    const fresh = plan(loads, topology);
    const m = migratePlacement(loads, previous, fresh, topology, options);
    text += JSON.stringify([
      Array.from(m.placement.phy2log),
      Array.from(m.placement.replicaRank),
      Array.from(m.placement.logcnt),
      m.metrics,
      m.layers,
      m.transfers,
    ]);
    slotsChanged += m.metrics.slotsChanged;
    afterOverFresh = m.metrics.afterOverFresh;
    previous = m.placement;
  }
  return { name, hash: fnv(text), slotsChanged, afterOverFresh };
}

/** migrateLayer without a fresh plan (the simulator's path when it has none). */
function noFreshRecord(name: string, topology: Topology, seed: number, budget: number): CaseRecord {
  const loads = integerLoads(3, topology.numExperts, seed, 0.1);
  const previous = planBalanced(loads, topology);
  const next = drift(loads, new Random(seed + 7), 0.5, 0.05);
  const out = createPlacement(3, topology.numReplicas, topology.numExperts);
  const settings = resolveMigrationSettings({ moveBudget: budget }, topology.numReplicas);
  const ws = new MigrationWorkspace(topology);
  let text = "";
  let slotsChanged = 0;
  for (let l = 0; l < 3; l++) {
    const r = migrateLayer(next, previous, null, l, out, settings, ws);
    text += JSON.stringify(r);
    slotsChanged += r.slotsChanged;
  }
  text += JSON.stringify([Array.from(out.phy2log), Array.from(out.logcnt)]);
  return { name, hash: fnv(text), slotsChanged, afterOverFresh: 0 };
}

/** Every case, computed by the current implementation. */
export function differentialCases(): CaseRecord[] {
  const records: CaseRecord[] = [];
  const balanced = (l: LoadMatrix, t: Topology) => planBalanced(l, t);
  const relaxed = (l: LoadMatrix, t: Topology) => planBalanced(l, t, { relaxedHierarchy: true });
  const deepseek = (l: LoadMatrix, t: Topology) => planDeepseek(l, t);
  // Small shapes of every locality mode, many seeds.
  const small: Array<[string, Topology]> = [
    ["global", makeTopology(12, 16, 3, 2, 4)],
    ["one-node", makeTopology(10, 16, 2, 1, 4)],
    ["strict", makeTopology(16, 24, 4, 2, 6)],
    ["strict-4n", makeTopology(16, 32, 4, 4, 8)],
  ];
  for (const [label, t] of small) {
    for (let seed = 1; seed <= 6; seed++) {
      const start = integerLoads(3, t.numExperts, 100 * seed, 0.15);
      const budget = [0.4, 2, 0.1, Number.POSITIVE_INFINITY, 5, 0.25][seed - 1];
      records.push(
        chainRecord(`${label} seed ${seed}`, t, start, 3, seed, { moveBudget: budget }, balanced),
      );
    }
  }
  const strict = makeTopology(16, 24, 4, 2, 6);
  for (let seed = 1; seed <= 4; seed++) {
    const start = integerLoads(3, 16, 300 + seed, 0.1);
    const options = { relaxedHierarchy: true, moveBudget: seed === 4 ? 3 : 0.4 };
    records.push(chainRecord(`relaxed seed ${seed}`, strict, start, 3, seed, options, relaxed));
  }
  // Medium shapes where the pair cache, the bounds and the group trade matter.
  const medium = makeTopology(64, 80, 8, 2, 16);
  const mediumLoads = lognormalLoads(4, 64, 1, 11);
  records.push(chainRecord("medium strict", medium, mediumLoads, 3, 12, {}, balanced));
  records.push(
    chainRecord("medium strict from deepseek", medium, mediumLoads, 2, 13, {}, deepseek),
  );
  records.push(
    chainRecord(
      "medium relaxed",
      medium,
      mediumLoads,
      2,
      14,
      { relaxedHierarchy: true, compareRelabelled: true },
      relaxed,
    ),
  );
  records.push(
    chainRecord(
      "medium tight settings",
      medium,
      mediumLoads,
      2,
      15,
      { slotGain: 0, tolerance: 0, minGain: 0, moveBudget: 0.05 },
      balanced,
    ),
  );
  const dsv3 = makeTopology(256, 288, 8, 4, 32);
  records.push(
    chainRecord("dsv3 strict", dsv3, lognormalLoads(2, 256, 1, 21), 2, 22, {}, balanced),
  );
  const flat = makeTopology(96, 128, 5, 2, 16);
  records.push(chainRecord("flat global", flat, lognormalLoads(3, 96, 1, 31), 2, 32, {}, balanced));
  for (const [label, t] of small) {
    records.push(noFreshRecord(`${label} without fresh plan`, t, 41, 0.4));
    records.push(noFreshRecord(`${label} without fresh plan, budget 3`, t, 42, 3));
  }
  // Empty slots (-1): filled first, counted against the placement as given.
  const oneNode = makeTopology(6, 8, 1, 1, 2);
  const emptyLoads = integerLoads(2, 6, 51, 0);
  const given = [
    [0, 1, 2, -1, 3, 4, 5, -1],
    [5, -1, 4, 3, 2, -1, 1, 0],
  ];
  const fresh = planBalanced(emptyLoads, oneNode);
  const m = migratePlacement(emptyLoads, given, fresh, oneNode);
  records.push({
    name: "empty slots",
    hash: fnv(JSON.stringify([Array.from(m.placement.phy2log), m.metrics, m.layers])),
    slotsChanged: m.metrics.slotsChanged,
    afterOverFresh: m.metrics.afterOverFresh,
  });
  return records;
}

if (process.argv.includes("--write")) {
  const { mkdirSync } = await import("node:fs");
  mkdirSync(join(repoRoot, "test", "fixtures", "migration"), { recursive: true });
  writeFileSync(differentialFixture, `${JSON.stringify(differentialCases(), null, 2)}\n`);
  console.log(`wrote ${differentialFixture}`);
}
