/**
 * src/io/load-values.ts: the readers' top layer, from a file's value to loads, a trace or "what
 * the file holds". Steps are summed or sliced exactly as a plain loop would, per-slot counts are
 * folded into experts only by a placement that fits, and a vLLM ring buffer is never replayed
 * or sliced out of time order.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { EplbInputError } from "../../src/core/model/errors.js";
import { placementFromPhy2log } from "../../src/core/model/placement.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { selectSteps } from "../../src/io/interpret.js";
import { classifyValue, loadsFromValue, traceFromValue } from "../../src/io/load-values.js";
import type { FileValue } from "../../src/io/value.js";
import { assertRefused } from "../helpers/refused.js";

const opts = { limit: 1e6 };
const tensor = (shape: number[], values: number[]) => ({
  dtype: "float64" as const,
  shape,
  data: Float64Array.from(values),
});

describe("loadsFromValue and traceFromValue: steps", () => {
  test("a 3-D value summed, or sliced by `steps`, equals a plain loop over the slice", () => {
    const slice = fc.constantFrom(undefined, ":", "1:", "-2:", "::2", "1:3", "-1", ":-1", "::3");
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.array(fc.nat(100), { minLength: 60, maxLength: 60 }),
        slice,
        (steps, layers, experts, pool, spec) => {
          const n = layers * experts;
          const values = pool.slice(0, steps * n);
          while (values.length < steps * n) values.push(values.length);
          const value = [] as number[][][];
          for (let s = 0; s < steps; s++) {
            value.push(
              Array.from({ length: layers }, (_, l) =>
                values.slice(s * n + l * experts, s * n + (l + 1) * experts),
              ),
            );
          }
          let sel: ReturnType<typeof selectSteps>;
          try {
            sel = selectSteps(spec, steps);
          } catch {
            return; // a slice this trace cannot take is selectSteps' business
          }
          const chosen = Array.from({ length: sel.count }, (_, k) => sel.start + k * sel.step);
          const want = new Array(n).fill(0);
          for (const s of chosen) for (let i = 0; i < n; i++) want[i] += values[s * n + i];
          const loads = loadsFromValue(value, "t.json", { ...opts, steps: spec });
          assert.deepEqual([loads.layers, loads.experts], [layers, experts]);
          assert.deepEqual(Array.from(loads.data), want);
          const trace = traceFromValue(value, "t.json", { ...opts, steps: spec });
          assert.equal(trace.steps, sel.count);
          assert.deepEqual(
            Array.from(trace.data),
            chosen.flatMap((s) => values.slice(s * n, (s + 1) * n)),
          );
        },
      ),
      { seed: 41, numRuns: 200 },
    );
  });

  test("a 2-D value is one step; taken whole it is returned without a copy", () => {
    const t = tensor([2, 2], [1, 2, 3, 4]);
    const loads = loadsFromValue({ weight: t }, "w.pt", opts);
    assert.equal(loads.data, t.data);
    const trace = traceFromValue(t, "w.npy", opts);
    assert.deepEqual([trace.steps, trace.layers, trace.experts], [1, 2, 2]);
  });

  test("shapes that are not loads, empty ones and bad values are refused naming the array", () => {
    const refused = (value: FileValue, message: string | RegExp) =>
      assertRefused(() => loadsFromValue(value, "f.json", opts), EplbFormatError, message);
    refused(
      { weight: tensor([3], [1, 2, 3]) },
      "f.json: weight has shape [3]: expected [layers, experts] or [steps, layers, experts]",
    );
    refused(
      { weight: tensor([1, 1, 1, 2], [1, 2]) },
      /^f\.json: weight has shape \[1, 1, 1, 2\]: expected/,
    );
    refused({ weight: tensor([0, 2, 2], []) }, "f.json: weight has shape [0, 2, 2]: it is empty");
    refused({ weight: tensor([2, 0], []) }, "f.json: weight has shape [2, 0]: it is empty");
    refused(
      { weight: tensor([1, 2], [1, -1]) },
      /^f\.json: weight\[0\]\[1\] \(-1\) must be finite and >= 0/,
    );
    assert.throws(
      () => loadsFromValue([[[1]], [[2]]], "f.json", { ...opts, steps: "5:1" }),
      EplbInputError,
    );
  });
});

describe("per-slot counts: folded into experts", () => {
  // Two layers, four slots holding experts [0, 1, 2, 0] and [2, 1, 0, 0] of three.
  const map = [
    [0, 1, 2, 0],
    [2, 1, 0, 0],
  ];
  const slots = placementFromPhy2log(map, 3);
  const counts = [
    [1, 2, 3, 4],
    [10, 20, 30, 40],
  ];

  test("by a given placement, with one line saying so", () => {
    const told: string[] = [];
    const loads = loadsFromValue({ expert_load_pass: counts }, "s.pt", {
      ...opts,
      slots,
      onFold: (t) => told.push(t),
    });
    assert.deepEqual(Array.from(loads.data), [5, 2, 3, 70, 20, 10]);
    assert.deepEqual(told, [
      "expert_load_pass [2, 4] counted per slot, folded into 3 experts by the slot placement",
    ]);
  });

  test("by the map saved beside vLLM's window, and refused when sizes disagree", () => {
    const value = {
      expert_load_window: [counts, counts],
      physical_to_logical_map: tensor([2, 4], map.flat()),
    };
    assert.deepEqual(Array.from(loadsFromValue(value, "s.pt", opts).data), [10, 4, 6, 140, 40, 20]);
    const small = placementFromPhy2log([[0, 1, 2]], 3);
    assertRefused(
      () => loadsFromValue({ expert_load_pass: counts }, "s.pt", { ...opts, slots: small }),
      EplbFormatError,
      "s.pt: expert_load_pass has 2 layers x 4 slots but the slot placement has 1 layers x 3 slots",
    );
  });
});

describe("vLLM's expert_load_window ring buffer", () => {
  const rows = [0, 1, 2].map((s) => [[s, 10 * s]]); // three passes, one layer, two slots
  const map = tensor([1, 2], [0, 1]); // vLLM saves its map as a tensor

  test("summed whole without its step; --steps and replay are refused", () => {
    const value = { expert_load_window: rows, physical_to_logical_map: map };
    assert.deepEqual(Array.from(loadsFromValue(value, "v.pt", opts).data), [3, 30]);
    assertRefused(
      () => loadsFromValue(value, "v.pt", { ...opts, steps: "1:" }),
      EplbFormatError,
      /^v\.pt: --steps cannot select rows of vLLM's expert_load_window: it is a ring buffer/,
    );
    assertRefused(
      () => traceFromValue(value, "v.pt", opts),
      EplbFormatError,
      /^v\.pt: vLLM's expert_load_window is a ring buffer written at a moving index, so its rows are not steps in time order and it is no trace to replay/,
    );
  });

  test("with expert_load_window_step, rows come oldest first and --steps selects in time order", () => {
    // The next row to write (index 1) is the oldest: time order is rows 1, 2, 0.
    const value = {
      expert_load_window: rows,
      physical_to_logical_map: map,
      expert_load_window_step: 1,
    };
    assert.deepEqual(Array.from(traceFromValue(value, "v.pt", opts).data), [1, 10, 2, 20, 0, 0]);
    assert.deepEqual(
      Array.from(loadsFromValue(value, "v.pt", { ...opts, steps: "-1:" }).data),
      [0, 0],
    );
  });
});

describe("classifyValue", () => {
  test("a placement by its keys, else loads (2-D) or a trace (3-D)", () => {
    assert.equal(classifyValue({ phy2log: [[0, 1]] }, "x.json", opts).kind, "placement");
    assert.equal(
      classifyValue({ num_slots: 2, initial_global_assignments: { 0: [0, 1] } }, "x.yaml", opts)
        .kind,
      "placement",
    );
    assert.equal(classifyValue([[1, 2]], "x.json", opts).kind, "loads");
    const t = classifyValue([[[1, 2]], [[3, 4]]], "x.json", opts);
    assert.equal(t.kind, "trace");
    assert.equal(t.kind === "trace" && t.trace.steps, 2);
  });

  test("a key picks the array even in a file that holds a placement", () => {
    const value = { phy2log: [[0, 1]], weight: [[5, 6]] };
    const c = classifyValue(value, "x.json", { ...opts, key: "weight" });
    assert.equal(c.kind, "loads");
    assert.deepEqual(c.kind === "loads" && Array.from(c.loads.data), [5, 6]);
  });
});
