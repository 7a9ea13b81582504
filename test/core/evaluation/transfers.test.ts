import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import {
  gpuTransferCounts,
  planTransfers,
  TRANSFER_KINDS,
  transferList,
} from "../../../src/core/evaluation/transfers.js";
import { makeTopology, placementFromPhy2log } from "../../../src/index.js";
import { smallShape } from "../../helpers/instances.js";

// What an engine relies on in a transfer plan, checked against plain definitions on random pairs
// of placements: one copy per changed slot, from a slot that holds the expert before the move,
// of the cheapest kind any such slot allows.

const pairCase = fc
  .record({
    shape: smallShape(),
    layers: fc.integer({ min: 1, max: 3 }),
    // A percentage: fc.double over [0, 1] draws mostly values near 0 (it spreads over bit patterns).
    keepPercent: fc.integer({ min: 0, max: 100 }),
  })
  .map(({ shape, layers, keepPercent }) => {
    const { P, E, rng } = shape;
    const rand = (k: number) => rng.int(k);
    const previous: number[][] = [];
    const next: number[][] = [];
    for (let l = 0; l < layers; l++) {
      // Every expert has a slot before; the next placement changes a share of the slots to
      // random experts, never taking an expert's last slot.
      const before = Array.from({ length: P }, (_, i) => (i < E ? i : rand(E)));
      for (let i = P - 1; i > 0; i--) {
        const j = rand(i + 1);
        [before[i], before[j]] = [before[j], before[i]];
      }
      const after = before.slice();
      const count = new Array<number>(E).fill(0);
      for (const e of after) count[e]++;
      for (let i = 0; i < P; i++) {
        if (rand(100) < keepPercent || count[after[i]] < 2) continue;
        const y = rand(E);
        count[after[i]]--;
        count[y]++;
        after[i] = y;
      }
      previous.push(before);
      next.push(after);
    }
    return { ...shape, previous, next };
  });

describe("planTransfers", () => {
  test("one transfer per changed slot, from a slot holding the expert before, of the cheapest kind", () => {
    fc.assert(
      fc.property(pairCase, ({ nodes, slotsPerGpu: S, gpusPerNode, G, P, E, previous, next }) => {
        const t = makeTopology(E, P, 1, nodes, G);
        const plan = planTransfers(
          placementFromPhy2log(previous, E),
          placementFromPhy2log(next, E),
          t,
        );
        let changed = 0;
        const byKind = [0, 0, 0];
        const seen = new Set<string>();
        for (let l = 0; l < previous.length; l++) {
          for (let i = 0; i < P; i++) if (previous[l][i] !== next[l][i]) changed++;
        }
        assert.equal(plan.count, changed);
        for (let i = 0; i < plan.count; i++) {
          const l = plan.layer[i];
          const e = plan.expert[i];
          const to = plan.destination[i];
          const from = plan.source[i];
          assert.ok(i >= plan.layerOffsets[l] && i < plan.layerOffsets[l + 1]);
          assert.equal(next[l][to], e);
          assert.notEqual(previous[l][to], e);
          assert.equal(previous[l][from], e);
          assert.ok(!seen.has(`${l}:${to}`), "one transfer per destination");
          seen.add(`${l}:${to}`);
          // The cheapest kind any previous slot of the expert allows.
          const kindOf = (j: number) =>
            Math.floor(j / S) === Math.floor(to / S)
              ? 0
              : Math.floor(j / S / gpusPerNode) === Math.floor(to / S / gpusPerNode)
                ? 1
                : 2;
          let cheapest = 2;
          for (let j = 0; j < P; j++)
            if (previous[l][j] === e) cheapest = Math.min(cheapest, kindOf(j));
          assert.equal(plan.kind[i], cheapest, `transfer ${i} (${TRANSFER_KINDS[plan.kind[i]]})`);
          // Among sources of that kind, one that keeps its expert (is not overwritten) first.
          let keeping = false;
          for (let j = 0; j < P; j++) {
            if (previous[l][j] === e && kindOf(j) === cheapest && next[l][j] === e) keeping = true;
          }
          if (keeping) assert.equal(next[l][from], e, `transfer ${i}: a source that keeps ${e}`);
          byKind[plan.kind[i]]++;
        }
        assert.deepEqual([plan.local, plan.intraNode, plan.interNode], byKind);
      }),
      { numRuns: 400 },
    );
  });

  test("gpuTransferCounts and transferList describe the same transfers", () => {
    fc.assert(
      fc.property(pairCase, ({ nodes, slotsPerGpu: S, G, P, E, previous, next }) => {
        const t = makeTopology(E, P, 1, nodes, G);
        const plan = planTransfers(
          placementFromPhy2log(previous, E),
          placementFromPhy2log(next, E),
          t,
        );
        const list = transferList(plan, t);
        const counts = gpuTransferCounts(plan, t);
        assert.equal(list.length, plan.count);
        const incoming = new Int32Array(3 * G);
        const remoteOut = new Int32Array(G);
        for (const x of list) {
          assert.equal(x.sourceGpu, Math.floor(x.source / S));
          assert.equal(x.destinationGpu, Math.floor(x.destination / S));
          const k = TRANSFER_KINDS.indexOf(x.kind);
          incoming[k * G + x.destinationGpu]++;
          if (k > 0) remoteOut[x.sourceGpu]++;
        }
        assert.deepEqual(counts.incoming, incoming);
        assert.deepEqual(counts.remoteOut, remoteOut);
        const sum = (a: Int32Array) => a.reduce((x, y) => x + y, 0);
        assert.equal(sum(counts.outgoing), plan.count);
        assert.equal(sum(counts.remoteIn), plan.intraNode + plan.interNode);
      }),
      { numRuns: 300 },
    );
  });

  test("the same placement twice needs no transfer", () => {
    const t = makeTopology(3, 4, 1, 2, 2);
    const p = placementFromPhy2log([[0, 1, 2, 0]], 3);
    const plan = planTransfers(p, p, t);
    assert.equal(plan.count, 0);
    assert.deepEqual([plan.local, plan.intraNode, plan.interNode], [0, 0, 0]);
  });
});
