/**
 * The files vLLM, TensorRT-LLM and numpy write (built by test/fixtures/engines/
 * make_vllm_trtllm_npz.py exactly as the engines build them) read to the loads the engine meant:
 * expected.json holds those loads as the script computed them with torch/numpy, never with eplb.
 */
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { LoadMatrix } from "../../src/core/model/matrix.js";
import { EplbFormatError } from "../../src/io/errors.js";
import {
  detectFormat,
  type LoadsNote,
  openTraceStream,
  readLoads,
  readPlacement,
  readTrace,
  readValue,
} from "../../src/io/read.js";
import type { Tensor } from "../../src/io/tensor.js";
import type { FileObject } from "../../src/io/value.js";
import { repoRoot } from "../helpers/cli.js";
import { encode, Prng, safetensorsBytes } from "./support.js";

const dir = join(repoRoot, "test", "fixtures", "engines");
const at = (...parts: string[]) => join(dir, ...parts);
const expected = JSON.parse(readFileSync(at("expected.json"), "utf8")) as Record<
  string,
  number[][]
>;
const tmp = mkdtempSync(join(tmpdir(), "eplb-engines-"));

/** Element by element: same shape, same value at every (layer, expert). */
function assertLoads(m: LoadMatrix, want: number[][]): void {
  assert.ok(want, "expected.json has this case");
  assert.equal(m.layers, want.length, "layers");
  assert.equal(m.experts, want[0].length, "experts");
  for (let l = 0; l < m.layers; l++) {
    for (let e = 0; e < m.experts; e++) {
      assert.equal(m.data[l * m.experts + e], want[l][e], `load of layer ${l}, expert ${e}`);
    }
  }
}

const refused = (pattern: RegExp) => (e: unknown) =>
  e instanceof EplbFormatError && pattern.test(e.message) && !e.message.includes("\n");

describe("vLLM EPLB state: expert_load_window folded as vLLM's rearrange does", () => {
  test("a file with the window and physical_to_logical_map reads on its own", () => {
    assertLoads(readLoads(at("vllm", "eplb-state.pt")), expected["vllm/eplb-state.pt"]);
  });

  test("the fold is reported, naming the map", () => {
    const notes: LoadsNote[] = [];
    readLoads(at("vllm", "eplb-state.pt"), { onNote: (n) => notes.push(n) });
    assert.deepEqual(
      notes.map((n) => n.text),
      [
        "expert_load_window [5, 3, 10] counted per slot, folded into 8 experts by the physical_to_logical_map",
      ],
    );
  });

  test("--key expert_load_pass folds the current pass with the same map", () => {
    assertLoads(
      readLoads(at("vllm", "eplb-state.pt"), { key: "expert_load_pass" }),
      expected["vllm/eplb-state.pt#expert_load_pass"],
    );
  });

  test("the window alone is refused in one line, and folded with --slot-placement", () => {
    assert.throws(
      () => readLoads(at("vllm", "window-only.pt")),
      refused(/expert_load_window counts tokens per physical slot .*--slot-placement/),
    );
    assertLoads(
      readLoads(at("vllm", "window-only.pt"), { slotPlacement: at("vllm", "p2l.json") }),
      expected["vllm/window-only.pt+p2l.json"],
    );
  });

  test("slots == experts: the window is still refused without its map (it would pass for per-expert loads)", () => {
    assert.throws(() => readLoads(at("vllm", "window-square.pt")), refused(/--slot-placement/));
    const folded = readLoads(at("vllm", "window-square.pt"), {
      slotPlacement: at("vllm", "p2l-square.json"),
    });
    const want = expected["vllm/window-square.pt+p2l-square.json"];
    assertLoads(folded, want);
    // The map swaps neighbours, so slots read as experts would be other numbers: the refusal
    // above prevents a real misread, not a harmless one.
    const { value } = readValue(at("vllm", "window-square.pt"));
    const window = (value as FileObject).expert_load_window as Tensor;
    let slot0 = 0;
    for (let t = 0; t < window.shape[0]; t++) slot0 += window.data[t * 24];
    assert.equal(slot0, want[0][1]);
    assert.notEqual(slot0, want[0][0]);
  });

  test("unused slots (-1, elastic EP) count nothing; a load on one is refused", () => {
    assertLoads(readLoads(at("vllm", "elastic.pt")), expected["vllm/elastic.pt"]);
    assert.throws(
      () => readLoads(at("vllm", "elastic-load-on-unused-slot.pt")),
      refused(/expert_load_window\[2\]\[1\]\[9\] is 7 .*unused \(-1\)/),
    );
  });

  test("--slot-placement must agree with the map saved in the file", () => {
    const p2l = JSON.parse(readFileSync(at("vllm", "p2l.json"), "utf8")).physical_to_logical_map;
    const same = join(tmp, "same.json");
    writeFileSync(same, JSON.stringify({ phy2log: p2l }));
    assertLoads(
      readLoads(at("vllm", "eplb-state.pt"), { slotPlacement: same }),
      expected["vllm/eplb-state.pt"],
    );
    const other = join(tmp, "other.json");
    const swapped = p2l.map((row: number[]) => [row[1], row[0], ...row.slice(2)]);
    writeFileSync(other, JSON.stringify({ phy2log: swapped }));
    assert.throws(
      () => readLoads(at("vllm", "eplb-state.pt"), { slotPlacement: other }),
      refused(/differs from --slot-placement/),
    );
  });

  test("--steps on the window is refused: it is a ring buffer, rows are not in time order", () => {
    assert.throws(
      () => readLoads(at("vllm", "eplb-state.pt"), { steps: "-2:" }),
      refused(/ring buffer/),
    );
  });

  test("without expert_load_window_step a window is no trace: its rows are not in time order", () => {
    assert.throws(
      () => readTrace(at("vllm", "eplb-state.pt")),
      (e: Error) => e instanceof EplbFormatError && /no trace to replay/.test(e.message),
    );
  });

  test("with expert_load_window_step saved, rows are put in time order and --steps selects", () => {
    const path = at("vllm", "eplb-state-with-step.pt");
    assertLoads(
      readLoads(path, { steps: "-2:" }),
      expected["vllm/eplb-state-with-step.pt#steps=-2:"],
    );
    // The whole window sums the same whatever the order.
    assertLoads(readLoads(path), expected["vllm/eplb-state.pt"]);
    // Oldest first: the trace's first step is the ring's row 2 (the next vLLM would write).
    const ordered = readTrace(path);
    const stored = readTrace(at("vllm", "eplb-state.pt"), { key: "expert_load_window" });
    const n = ordered.layers * ordered.experts;
    assert.deepEqual(ordered.data.subarray(0, n), stored.data.subarray(2 * n, 3 * n));
  });

  test("a window saved soon after a rearrangement warns: its older rows were counted under another placement", () => {
    const warnings = (path: string, steps?: string) => {
      const notes: LoadsNote[] = [];
      const m = readLoads(path, { steps, onNote: (n) => notes.push(n) });
      return { m, texts: notes.filter((n) => n.level === "warning").map((n) => n.text) };
    };
    const path = at("vllm", "eplb-state-rearranged.pt");
    // The whole window is still folded as vLLM's next rearrange would fold it, with a warning
    // that says how many rows are older and how to read only the rest.
    const whole = warnings(path);
    assertLoads(whole.m, expected["vllm/eplb-state.pt"]);
    assert.equal(whole.texts.length, 1);
    assert.match(
      whole.texts[0],
      /^.*eplb-state-rearranged\.pt: expert_load_window: 3 of its 5 rows/,
    );
    assert.match(whole.texts[0], /--steps -2:/);
    // The rows counted since the rearrangement: the newest 2, no warning.
    const since = warnings(path, "-2:");
    assertLoads(since.m, expected["vllm/eplb-state-rearranged.pt#steps=-2:"]);
    assert.deepEqual(since.texts, []);
    // Without the ring's start the rows cannot be told apart: the warning says what to save.
    const unordered = warnings(at("vllm", "eplb-state-rearranged-no-window-step.pt"));
    assertLoads(unordered.m, expected["vllm/eplb-state.pt"]);
    assert.equal(unordered.texts.length, 1);
    assert.match(unordered.texts[0], /3 of its 5 rows.*save expert_load_window_step/);
    // A state without expert_rearrangement_step says nothing about it: no warning.
    assert.deepEqual(warnings(at("vllm", "eplb-state-with-step.pt")).texts, []);
  });

  test("as a trace (rows in stored order, asked for by key), each window row is folded", () => {
    const t = readTrace(at("vllm", "eplb-state.pt"), { key: "expert_load_window" });
    assert.equal(t.steps, 5);
    assert.equal(t.experts, 8);
    const want = expected["vllm/eplb-state.pt"];
    const n = t.layers * t.experts;
    for (let i = 0; i < n; i++) {
      let sum = 0;
      for (let s = 0; s < t.steps; s++) sum += t.data[s * n + i];
      assert.equal(sum, want[Math.floor(i / 8)][i % 8]);
    }
  });

  test("the state file is also a placement (its physical_to_logical_map)", () => {
    const p = readPlacement(at("vllm", "eplb-state.pt"));
    assert.equal(p.numReplicas, 10);
    assert.equal(p.numExperts, 8);
  });
});

describe("TensorRT-LLM expert statistics folder (EXPERT_STATISTIC_PATH)", () => {
  test("ranks and iterations summed, layers in model order from the first MoE layer", () => {
    const notes: LoadsNote[] = [];
    const m = readLoads(at("trtllm", "stats"), { onNote: (n) => notes.push(n) });
    assertLoads(m, expected["trtllm/stats"]);
    assert.equal(notes.length, 1);
    assert.equal(notes[0].level, "info");
    assert.deepEqual(notes[0].layerIds, [3, 4, 5]);
    assert.match(
      notes[0].text,
      /2 ranks, iterations 100-103 \(4 of 4\), 3 MoE layers \(model layers 3-5\), 8 experts, top-2/,
    );
  });

  test("--steps slices the iterations in time order", () => {
    assertLoads(
      readLoads(at("trtllm", "stats"), { steps: "1:3" }),
      expected["trtllm/stats#steps=1:3"],
    );
    const t = readTrace(at("trtllm", "stats"));
    assert.equal(t.steps, 4);
    assert.equal(t.layers, 3);
  });

  test("recorded with the load balancer on (slot ids): --slot-placement folds slots into experts", () => {
    const map = [0, 1, 2, 3, 4, 5, 0, 1];
    const placement = join(tmp, "trt-slots.json");
    writeFileSync(placement, JSON.stringify({ phy2log: [map, map, map] }));
    const m = readLoads(at("trtllm", "stats"), { slotPlacement: placement });
    const want = expected["trtllm/stats"].map((row) => {
      const out = [0, 0, 0, 0, 0, 0];
      row.forEach((v, slot) => {
        out[map[slot]] += v;
      });
      return out;
    });
    assertLoads(m, want);
  });

  test("not streamed as a .npy: simulate's stream opener leaves the folder to readTrace", () => {
    assert.equal(openTraceStream(at("trtllm", "stats")), null);
  });

  test("a layer no rank recorded in an iteration is refused (rows would not align)", () => {
    assert.throws(
      () => readLoads(at("trtllm", "incomplete")),
      refused(/no rank recorded layer 4 in iteration 101/),
    );
  });

  test("a rank missing a record the others have: summed, with a one-line warning", () => {
    const notes: LoadsNote[] = [];
    const m = readLoads(at("trtllm", "rank-missing-record"), { onNote: (n) => notes.push(n) });
    assertLoads(m, expected["trtllm/rank-missing-record"]);
    const warnings = notes.filter((n) => n.level === "warning");
    assert.equal(warnings.length, 1);
    assert.match(warnings[0].text, /rank1\.safetensors lacks 1 of the 12/);
  });

  test("one rank's file alone is refused with a pointer to the folder", () => {
    assert.throws(
      () => readLoads(at("trtllm", "stats", "rank0.safetensors")),
      refused(/one rank of TensorRT-LLM expert statistics; pass the folder/),
    );
  });

  test("layers that are not consecutive model layers: read in order, with a warning", () => {
    const folder = join(tmp, "interleaved");
    mkdirSync(folder);
    writeFileSync(join(folder, "meta_info.json"), '{"num_experts": 2, "num_experts_per_token": 1}');
    const tensors = [1, 3, 5].map((layer) => ({
      name: `7_${layer}`,
      dtype: "I64",
      shape: [2],
      data: encode("int64", [layer, 10 * layer]),
    }));
    writeFileSync(join(folder, "rank0.safetensors"), safetensorsBytes(tensors));
    const notes: LoadsNote[] = [];
    const m = readLoads(folder, { onNote: (n) => notes.push(n) });
    assert.deepEqual(Array.from(m.data), [1, 10, 3, 30, 5, 50]);
    assert.ok(
      notes.some(
        (n) => n.level === "warning" && /model layers 1, 3, 5 \(not consecutive\)/.test(n.text),
      ),
    );
  });

  test("iterations that skip are refused", () => {
    const folder = join(tmp, "skip");
    mkdirSync(folder);
    writeFileSync(join(folder, "meta_info.json"), '{"num_experts": 2, "num_experts_per_token": 1}');
    const tensors = [1, 3].map((it) => ({
      name: `${it}_0`,
      dtype: "I64",
      shape: [2],
      data: encode("int64", [1, 2]),
    }));
    writeFileSync(join(folder, "rank0.safetensors"), safetensorsBytes(tensors));
    assert.throws(() => readLoads(folder), refused(/iterations 1-3 skip some/));
  });
});

describe(".npz archives (numpy.savez / savez_compressed)", () => {
  test("one array, stored: that array", () => {
    assertLoads(readLoads(at("npz", "loads.npz")), expected["npz/loads.npz"]);
  });

  test("compressed, a well-known name (logical_count trace): summed over steps", () => {
    assertLoads(readLoads(at("npz", "trace-compressed.npz")), expected["npz/trace-compressed.npz"]);
  });

  test("several arrays without --key are refused listing them; --key picks one", () => {
    assert.throws(
      () => readLoads(at("npz", "two-arrays.npz")),
      refused(/holds 2 arrays \("first", "second"\): name the one with the loads with --key/),
    );
    assertLoads(
      readLoads(at("npz", "two-arrays.npz"), { key: "second" }),
      expected["npz/two-arrays.npz#second"],
    );
  });

  test("a vLLM window saved with its map in an .npz is folded by it", () => {
    assertLoads(readLoads(at("npz", "vllm-state.npz")), expected["npz/vllm-state.npz"]);
  });

  test("detected by content whatever the name; torch zips stay torch", () => {
    const bytes = readFileSync(at("npz", "loads.npz"));
    assert.equal(detectFormat(bytes, "loads.bin"), "npz");
    assert.equal(detectFormat(readFileSync(at("vllm", "eplb-state.pt")), "x.npz"), "pt");
  });
});

describe("legacy (non-zip) torch.save files", () => {
  test("read as torch.load reads them (torch.save(..., _use_new_zipfile_serialization=False))", () => {
    assertLoads(readLoads(at("legacy", "loads-legacy.pt")), expected["legacy/loads-legacy.pt"]);
  });

  test("a truncated one is refused in one line saying how to re-save", () => {
    const bytes = readFileSync(at("legacy", "loads-legacy.pt"));
    const cut = join(tmp, "cut.pt");
    writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    assert.throws(
      () => readLoads(cut),
      refused(/legacy \(non-zip\) torch\.save file: .*torch\.save\(torch\.load\(path\), path\)/),
    );
  });

  test("detected by their pickled magic number whatever the extension", () => {
    assert.equal(detectFormat(readFileSync(at("legacy", "loads-legacy.pt")), "loads.pkl"), "pt");
  });
});

describe("mutated legacy torch, .npz and vLLM files", () => {
  // The new readers parse untrusted bytes too: every outcome is a value or a one-line
  // EplbFormatError, never another exception (seeded, so a failure reproduces).
  const rng = new Prng(1212);
  for (const name of [
    ["legacy", "loads-legacy.pt"],
    ["npz", "loads.npz"],
    ["npz", "vllm-state.npz"],
    ["vllm", "eplb-state.pt"],
  ]) {
    test(`${name.join("/")}: 300 byte flips, truncations and splices`, () => {
      const original = new Uint8Array(readFileSync(at(...name)));
      for (let i = 0; i < 300; i++) {
        let bytes = original.slice();
        const kind = i % 3;
        if (kind === 0) {
          for (let k = 0; k < 1 + rng.int(4); k++) bytes[rng.int(bytes.length)] = rng.int(256);
        } else if (kind === 1) {
          bytes = bytes.subarray(0, rng.int(bytes.length));
        } else {
          const at0 = rng.int(bytes.length);
          const from = rng.int(bytes.length);
          bytes.copyWithin(at0, from, from + 1 + rng.int(64));
        }
        const path = join(tmp, `fuzz-${i % 7}${name[1].slice(name[1].lastIndexOf("."))}`);
        writeFileSync(path, bytes);
        try {
          readLoads(path);
        } catch (error) {
          const ok = error instanceof EplbFormatError && !error.message.includes("\n");
          if (!ok) {
            assert.fail(`mutation ${i} of ${name.join("/")}: ${String((error as Error).stack)}`);
          }
        }
      }
    });
  }
});
