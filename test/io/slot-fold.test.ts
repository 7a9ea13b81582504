/**
 * src/io/slot-fold.ts: vLLM counts tokens per physical slot; eplb folds them into logical experts
 * through the map they were recorded under, and refuses every case where a fold would guess.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { placementFromPhy2log } from "../../src/index.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { foldSlots, slotFoldFor, vllmStaleRows, vllmWindowStart } from "../../src/io/slot-fold.js";
import type { Tensor } from "../../src/io/tensor.js";
import { assertRefused } from "../helpers/refused.js";

function tensor(shape: number[], values: number[] | Float64Array): Tensor {
  return { dtype: "int64", shape, data: Float64Array.from(values) };
}

const refused = (fn: () => unknown, message: RegExp) => assertRefused(fn, EplbFormatError, message);

// 2 layers of 6 slots holding 4 experts.
const p2l = [0, 1, 2, 3, 0, 1, 3, 2, 1, 0, 3, 3];
const window = tensor([3, 2, 6], new Float64Array(36).fill(1));

describe("slotFoldFor", () => {
  test("a vLLM window beside its physical_to_logical_map folds through that map", () => {
    for (const name of ["expert_load_window", "expert_load_pass"]) {
      const fold = slotFoldFor(
        { [name]: window, physical_to_logical_map: tensor([2, 6], p2l) },
        name,
        "s.pt",
      );
      assert.deepEqual(
        { ...fold, map: Array.from(fold?.map ?? []) },
        { layers: 2, slots: 6, experts: 4, map: p2l, source: "physical_to_logical_map" },
      );
    }
  });

  test("logical_replica_count gives the expert count (an expert on no slot still counts)", () => {
    const value = {
      expert_load_window: window,
      physical_to_logical_map: tensor([2, 6], p2l),
      logical_replica_count: tensor([2, 5], new Float64Array(10)),
    };
    assert.equal(slotFoldFor(value, "expert_load_window", "s.pt")?.experts, 5);
    const narrow = { ...value, logical_replica_count: tensor([2, 3], new Float64Array(6)) };
    refused(
      () => slotFoldFor(narrow, "expert_load_window", "s.pt"),
      /^s\.pt: physical_to_logical_map holds expert 3 but logical_replica_count has 3 experts$/,
    );
  });

  test("a vLLM window without a map is refused: read as is it would pass for loads per expert", () => {
    refused(
      () => slotFoldFor({ expert_load_window: window }, "expert_load_window", "s.pt"),
      /expert_load_window counts tokens per physical slot \(vLLM\), not per expert: pass --slot-placement/,
    );
  });

  test("--slot-placement folds, and must agree with a map the file holds", () => {
    const slots = placementFromPhy2log(
      [
        [0, 1, 2, 3, 0, 1],
        [3, 2, 1, 0, 2, 3],
      ],
      4,
    );
    const fold = slotFoldFor({ expert_load_window: window }, "expert_load_window", "s.pt", slots);
    assert.equal(fold?.source, "slot placement");
    assert.deepEqual(Array.from(fold?.map ?? []), Array.from(slots.phy2log));
    const own = { expert_load_window: window, physical_to_logical_map: tensor([2, 6], p2l) };
    refused(
      () => slotFoldFor(own, "expert_load_window", "s.pt", slots),
      /its physical_to_logical_map differs from --slot-placement/,
    );
    const same = placementFromPhy2log([p2l.slice(0, 6), p2l.slice(6)], 4);
    assert.equal(slotFoldFor(own, "expert_load_window", "s.pt", same)?.source, "slot placement");
  });

  test("loads per expert, or a value that is not a dict, need no fold", () => {
    assert.equal(slotFoldFor({ logical_count: window }, "logical_count", "d.pt"), undefined);
    assert.equal(slotFoldFor(window, "expert_load_window", "w.npy"), undefined);
  });

  test("a map that is not integer [layers, slots] with ids >= -1 is refused, naming the cell", () => {
    const fold = (map: unknown) =>
      slotFoldFor(
        { expert_load_window: window, physical_to_logical_map: map } as never,
        "expert_load_window",
        "s.pt",
      );
    refused(() => fold([0, 1]), /physical_to_logical_map is not a tensor \[layers, slots\]/);
    refused(
      () => fold(tensor([12], p2l)),
      /has shape \[12\]: expected a non-empty \[layers, slots\]/,
    );
    refused(() => fold(tensor([2, 0], [])), /has shape \[2, 0\]/);
    const bad = [...p2l];
    bad[7] = -2;
    refused(
      () => fold(tensor([2, 6], bad)),
      /physical_to_logical_map\[1\]\[1\] is -2: slots hold expert ids >= 0, or -1 when unused/,
    );
    bad[7] = 1.5;
    refused(() => fold(tensor([2, 6], bad)), /physical_to_logical_map\[1\]\[1\] is 1\.5/);
    refused(() => fold(tensor([1, 2], [-1, -1])), /physical_to_logical_map has no used slot/);
  });
});

describe("foldSlots", () => {
  const fold = {
    layers: 2,
    slots: 3,
    experts: 2,
    map: [0, 1, 0, 1, -1, 1],
    source: "physical_to_logical_map",
  };

  test("adds each slot's load to its expert, from and to the given offsets", () => {
    const src = Float64Array.from([99, 5, 1, 3, 2, 0, 4]);
    const out = new Float64Array(6).fill(10);
    foldSlots(fold, src, 1, out, 1, "expert_load_window[0]", "s.pt");
    assert.deepEqual(Array.from(out), [10, 18, 11, 10, 16, 10]);
  });

  test("tokens on an unused slot (-1) are refused, not dropped", () => {
    const src = Float64Array.from([5, 1, 3, 2, 7, 4]);
    refused(
      () => foldSlots(fold, src, 0, new Float64Array(4), 0, "expert_load_window[2]", "s.pt"),
      /^s\.pt: expert_load_window\[2\]\[1\]\[1\] is 7 but the physical_to_logical_map marks slot 1 of layer 1 unused \(-1\)/,
    );
  });
});

describe("vllmWindowStart", () => {
  const w = tensor([5, 2, 6], new Float64Array(60));

  test("is the oldest row the file names, as a number or a one-value tensor", () => {
    assert.equal(
      vllmWindowStart(
        { expert_load_window: w, expert_load_window_step: 3 },
        "expert_load_window",
        5,
        "s.pt",
      ),
      3,
    );
    const step = tensor([], [4]);
    assert.equal(
      vllmWindowStart(
        { expert_load_window: w, expert_load_window_step: step },
        "expert_load_window",
        5,
        "s.pt",
      ),
      4,
    );
  });

  test("is unknown for another array or without expert_load_window_step", () => {
    assert.equal(
      vllmWindowStart({ expert_load_pass: w }, "expert_load_pass", 5, "s.pt"),
      undefined,
    );
    assert.equal(
      vllmWindowStart({ expert_load_window: w }, "expert_load_window", 5, "s.pt"),
      undefined,
    );
  });

  test("a step outside the window is refused", () => {
    for (const bad of [5, -1, 1.5, "2"]) {
      refused(
        () =>
          vllmWindowStart(
            { expert_load_window: w, expert_load_window_step: bad } as never,
            "expert_load_window",
            5,
            "s.pt",
          ),
        /expert_load_window_step is .*: expected an integer in \[0, 5\)/,
      );
    }
  });
});

describe("vllmStaleRows", () => {
  // 4 rows of 1 layer x 2 slots; row 1 (stored) is zero.
  const rows = Float64Array.from([1, 2, 0, 0, 3, 4, 5, 6]);
  const value = (since: number | string) => ({
    expert_load_window: tensor([4, 1, 2], rows),
    expert_rearrangement_step: since,
  });
  const stale = (since: number | string, selected: number[], ring?: number) =>
    vllmStaleRows(value(since), "expert_load_window", rows, 4, selected, ring, "s.pt");

  test("with the ring's start, nonzero rows older than the newest expert_rearrangement_step are stale", () => {
    // ring 2: time order is stored rows 2, 3, 0, 1; since 1: only the newest (stored 1, zero) is new.
    assert.deepEqual(stale(1, [0, 1, 2, 3], 2), { since: 1, stale: 3 });
    // since 2: time positions 0 and 1 (stored 2 and 3) are old and nonzero.
    assert.deepEqual(stale(2, [0, 1, 2, 3], 2), { since: 2, stale: 2 });
    // Selecting only the newest rows is not stale.
    assert.equal(stale(2, [2, 3], 2), undefined);
    // A zero old row folds to nothing: ring 0, since 2, old rows are stored 0 and 1 (one zero).
    assert.deepEqual(stale(2, [0, 1, 2, 3], 0), { since: 2, stale: 1 });
  });

  test("without it, only the nonzero rows beyond expert_rearrangement_step are certainly stale", () => {
    assert.deepEqual(stale(1, [0, 1, 2, 3]), { since: 1, stale: 2 });
    assert.equal(stale(3, [0, 1, 2, 3]), undefined);
  });

  test("a rearrangement at least a window ago, or no counter in the file, is no concern", () => {
    assert.equal(stale(4, [0, 1, 2, 3], 0), undefined);
    assert.equal(
      vllmStaleRows(
        { expert_load_window: tensor([4, 1, 2], rows) },
        "expert_load_window",
        rows,
        4,
        [0],
        0,
        "s.pt",
      ),
      undefined,
    );
    assert.equal(vllmStaleRows(value(0), "expert_load_pass", rows, 4, [0], 0, "s.pt"), undefined);
  });

  test("a counter that is not an integer >= 0 is refused", () => {
    refused(() => stale(-1, [0], 0), /expert_rearrangement_step is -1: expected an integer >= 0/);
    refused(() => stale("x", [0], 0), /expert_rearrangement_step is x/);
  });
});
