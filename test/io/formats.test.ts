import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { EplbInputError } from "../../src/core/model/errors.js";
import { placementFromPhy2log } from "../../src/core/model/placement.js";
import { readCsv } from "../../src/io/csv.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { selectSteps } from "../../src/io/interpret.js";
import { readLoads, readPlacement, readTensorFile, readTrace } from "../../src/io/read.js";
import { formatPlacement, OUTPUT_FORMATS } from "../../src/io/writers.js";
import { encode, npyBytes, safetensorsBytes } from "./support.js";

const formatError = (pattern: RegExp) => (e: unknown) =>
  e instanceof EplbFormatError && pattern.test(e.message) && !e.message.includes("\n");
const text = (s: string) => new TextEncoder().encode(s);

const dir = mkdtempSync(join(tmpdir(), "eplb-io-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
function file(name: string, content: string | Uint8Array): string {
  const p = join(dir, `${counter++}-${name}`);
  writeFileSync(p, content);
  return p;
}

describe("JSON forms", () => {
  const loads = [
    [1, 2, 3],
    [4, 5, 6],
  ];
  const forms: [string, unknown][] = [
    ["bare 2-D", loads],
    ["weight", { weight: loads }],
    ["logical_count 2-D", { logical_count: loads }],
    [
      "logical_count 3-D",
      { logical_count: [loads.map((r) => r.map((v) => v - 1)), loads.map((r) => r.map(() => 1))] },
    ],
    ["shape + flat counts", { shape: [2, 3], counts: [1, 2, 3, 4, 5, 6] }],
    ["shape + nested counts", { shape: [1, 2, 3], counts: [loads] }],
    ["loads", { loads }],
    ["hotness 3-D", { hotness: [loads] }],
    ["unknown key, single 2-D array", { rank: 3, stats: loads }],
  ];
  for (const [name, value] of forms) {
    test(`loads from ${name}`, () => {
      const m = readLoads(file("l.json", JSON.stringify(value)));
      assert.deepEqual([m.layers, m.experts, ...m.data], [2, 3, 1, 2, 3, 4, 5, 6]);
    });
  }

  test("placements: physical_to_logical_map, phy2log (deepseek output with metrics), bare 2-D", () => {
    for (const value of [
      { physical_to_logical_map: [[0, 1, 2, 0]] },
      {
        phy2log: [[0, 1, 2, 0]],
        log2phy: [
          [
            [0, 3],
            [1, -1],
            [2, -1],
          ],
        ],
        logcnt: [[2, 1, 1]],
        metrics: { a: 1 },
      },
      [[0, 1, 2, 0]],
    ]) {
      const p = readPlacement(file("p.json", JSON.stringify(value)));
      assert.deepEqual(Array.from(p.phy2log), [0, 1, 2, 0]);
      assert.deepEqual(Array.from(p.logcnt), [2, 1, 1]);
    }
  });

  test("placement errors", () => {
    const cases: [unknown, RegExp][] = [
      [{ phy2log: [[0, 1, -2]] }, /phy2log\[0\]\[2\] is -2.*or -1 \(an empty slot\)/],
      [{ phy2log: [[0, 1.5]] }, /is 1\.5/],
      [{ phy2log: [[0, 2]] }, /expert 1.*has no replica/],
      [{ phy2log: [[0, 1], [0]] }, /ragged/],
      [{ phy2log: [] }, /expected a non-empty \[layers, slots\]/],
      [{ phy2log: [[[0]]] }, /shape \[1, 1, 1\]/],
      [{ weight: [[1]] }, /no placement found.*keys present: "weight"/],
      [{ phy2log: "x" }, /phy2log is a string, not an array/],
      [{ phy2log: [[0, null]] }, /phy2log\[0\]\[1\] is null, not a number/],
    ];
    for (const [value, pattern] of cases) {
      assert.throws(
        () => readPlacement(file("p.json", JSON.stringify(value))),
        formatError(pattern),
        pattern.source,
      );
    }
  });

  test("loads errors name the entry and the rule", () => {
    const cases: [string, RegExp][] = [
      ["[[1, -2]]", /loads\[0\]\[1\] \(-2\) must be finite and >= 0/],
      ['{"weight": [[1, 2], [3]]}', /weight\[1\] has length 1, expected 2 \(ragged/],
      ['{"weight": [1, 2]}', /shape \[2\]: expected \[layers, experts\]/],
      ['{"weight": []}', /shape \[0\]/],
      ['{"weight": [[]]}', /it is empty/],
      ['{"weight": [["1"]]}', /weight\[0\]\[0\] is a string, not a number/],
      ['{"rank": 0}', /no loads found.*keys present: "rank"/],
      [
        '{"shape": [2, 2], "counts": [1, 2, 3]}',
        /counts has 3 elements but shape \[2, 2\] needs 4/,
      ],
      ["[[1, 2]", /invalid JSON/],
      ["", /no data rows|invalid JSON/],
    ];
    for (const [json, pattern] of cases) {
      assert.throws(() => readLoads(file("bad.json", json)), formatError(pattern), json);
    }
  });

  test("a BOM and surrounding whitespace are fine", () => {
    const m = readLoads(file("bom.json", `\ufeff  \n [[1, 2]]\n`));
    assert.deepEqual(Array.from(m.data), [1, 2]);
  });
});

describe("CSV", () => {
  const csv = (s: string) => readCsv(text(s), "l.csv");

  test("header row skipped, blank lines and comments ignored, CRLF, quotes, spaces", () => {
    const t = csv(
      '# numpy.savetxt header\r\ne0, e1 ,"e2"\r\n\r\n1, 2.5, 3e2\r\n  \r\n"4",5,-0\r\n',
    );
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(Array.from(t.data), [1, 2.5, 300, 4, 5, -0]);
  });

  test("no header, single row, no trailing newline", () => {
    assert.deepEqual(Array.from(csv("7,8,9").data), [7, 8, 9]);
    assert.deepEqual(csv("1\n2\n3\n").shape, [3, 1]);
  });

  test("errors: ragged rows, junk after the header, no rows, other separators", () => {
    assert.throws(
      () => csv("1,2\n3\n"),
      formatError(/line 2 has 1 columns, the first data row has 2/),
    );
    assert.throws(
      () => csv("a,b\n1,2\nx,3\n"),
      formatError(/line 3 column 1: "x" is not a number/),
    );
    assert.throws(() => csv("a,b\n"), formatError(/no data rows/));
    assert.throws(() => csv("\n\n"), formatError(/no data rows/));
    assert.throws(() => csv("1,2\n3;4\n"), formatError(/only commas separate columns/));
    assert.throws(() => csv("1,2\n3,\n"), formatError(/column 2: "" is not a number/));
  });

  test("NaN and infinities parse, then fail the loads check", () => {
    assert.ok(Number.isNaN(csv("nan,inf").data[0]));
    assert.throws(
      () => readLoads(file("n.csv", "1,2\nNaN,3\n")),
      formatError(/loads\[1\]\[0\] \(NaN\) must be finite/),
    );
    assert.throws(
      () => readLoads(file("i.csv", "1,-inf\n")),
      formatError(/\(-Infinity\) must be finite/),
    );
  });

  test("readLoads and readPlacement take CSV", () => {
    assert.deepEqual(Array.from(readLoads(file("l.csv", "e0,e1\n1,2\n3,4\n")).data), [1, 2, 3, 4]);
    assert.deepEqual(
      Array.from(readPlacement(file("p.csv", "0,1,0\n1,0,1\n")).logcnt),
      [2, 1, 1, 2],
    );
  });
});

describe("engine placements read back what the writers write", () => {
  const p = placementFromPhy2log(
    [
      [0, 1, 2, 3, 0, 1],
      [3, 2, 1, 0, 2, 3],
    ],
    4,
  );
  for (const format of OUTPUT_FORMATS) {
    test(`${format} round trip`, () => {
      const body = formatPlacement(p, format, { numGpus: 2, firstLayer: 3 });
      const path = file(`plan.${format === "trtllm" ? "yaml" : "json"}`, body);
      const q = readPlacement(path);
      assert.deepEqual(Array.from(q.phy2log), Array.from(p.phy2log));
      assert.equal(q.numExperts, 4);
      assert.equal(readTensorFile(path).kind, "placement");
    });
  }

  test("vllm-ascend: layers and devices by list position, as the engine reads them", () => {
    // vllm-ascend's expert_file_to_tensor takes layer_list[i] for its i-th MoE layer and
    // device_list[r] for rank r; layer_id and device_id are never read, so neither is here.
    const map = {
      moe_layer_count: 2,
      layer_list: [
        {
          layer_id: 7,
          device_count: 2,
          device_list: [
            { device_id: 1, device_expert: [2, 0] },
            { device_id: 0, device_expert: [0, 1] },
          ],
        },
        {
          layer_id: 3,
          device_count: 2,
          device_list: [
            { device_id: 0, device_expert: [1, 1] },
            { device_id: 0, device_expert: [2, 0] },
          ],
        },
      ],
    };
    const q = readPlacement(file("a.json", JSON.stringify(map)));
    assert.deepEqual(Array.from(q.phy2log), [2, 0, 0, 1, 1, 1, 2, 0]);
    const wrongCount = { ...map, moe_layer_count: 3 };
    assert.throws(
      () => readPlacement(file("a.json", JSON.stringify(wrongCount))),
      formatError(/moe_layer_count is the number 3/),
    );
    // torch.tensor of the device lists needs them all the same length.
    const unequal = {
      layer_list: [{ device_list: [{ device_expert: [0, 1] }, { device_expert: [2] }] }],
    };
    assert.throws(
      () => readPlacement(file("a.json", JSON.stringify(unequal))),
      formatError(
        /device_list\[1\]\.device_expert has 1 experts but .* has 2: vllm-ascend needs equal/,
      ),
    );
    const ragged = {
      layer_list: [
        { device_list: [{ device_expert: [0, 1] }] },
        { device_list: [{ device_expert: [0] }] },
      ],
    };
    assert.throws(
      () => readPlacement(file("a.json", JSON.stringify(ragged))),
      formatError(/vllm-ascend needs equal device lists/),
    );
  });

  test("TensorRT-LLM: layers sorted numerically, num_slots checked", () => {
    const y = "num_slots: 3\ninitial_global_assignments:\n  10: [1, 0, 1]\n  9: [0, 1, 0]\n";
    assert.deepEqual(Array.from(readPlacement(file("t.yaml", y)).phy2log), [0, 1, 0, 1, 0, 1]);
    const bad = "num_slots: 4\ninitial_global_assignments:\n  0: [1, 0, 1]\n";
    assert.throws(
      () => readPlacement(file("t.yaml", bad)),
      formatError(/has 3 slots but num_slots is the number 4/),
    );
    const key = "initial_global_assignments:\n  first: [1, 0]\n";
    assert.throws(
      () => readPlacement(file("t.yaml", key)),
      formatError(/layer keys must be integers/),
    );
  });

  test("placements from .npy and safetensors", () => {
    const npy = file("p.npy", npyBytes("<i8", [1, 3], [1, 0, 1]));
    assert.deepEqual(Array.from(readPlacement(npy).logcnt), [1, 2]);
    const st = file(
      "p.safetensors",
      safetensorsBytes([
        {
          name: "physical_to_logical_map",
          dtype: "I32",
          shape: [1, 3],
          data: encode("int32", [2, 1, 0]),
        },
      ]),
    );
    assert.deepEqual(Array.from(readPlacement(st).phy2log), [2, 1, 0]);
  });
});

describe("per-slot loads folded by a placement (vLLM expert_load_window)", () => {
  const placement = file(
    "slots.json",
    JSON.stringify({
      physical_to_logical_map: [
        [0, 1, 0],
        [1, 1, 0],
      ],
    }),
  );

  test("3-D window [window, layers, slots] is summed and folded", () => {
    const window = [
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      [
        [10, 20, 30],
        [40, 50, 60],
      ],
    ];
    const path = file("w.json", JSON.stringify({ expert_load_window: window }));
    const m = readLoads(path, { slotPlacement: placement, key: "expert_load_window" });
    assert.deepEqual([m.layers, m.experts, ...m.data], [2, 2, 44, 22, 66, 99]);
    const t = readTrace(path, { slotPlacement: placement, key: "expert_load_window" });
    assert.deepEqual(Array.from(t.data), [4, 2, 6, 9, 40, 20, 60, 90]);
    // vLLM writes the window as a ring buffer: a slice of its rows is not a time range.
    assert.throws(
      () => readTrace(path, { slotPlacement: placement, key: "expert_load_window", steps: "1" }),
      formatError(/ring buffer/),
    );
  });

  test("slot counts must match the placement", () => {
    const path = file("w.json", JSON.stringify([[1, 2]]));
    assert.throws(
      () => readLoads(path, { slotPlacement: placement }),
      formatError(/1 layers x 2 slots but the slot placement has 2 layers x 3 slots/),
    );
  });
});

describe("steps slices", () => {
  test("python semantics", () => {
    assert.deepEqual(selectSteps(undefined, 5), { start: 0, step: 1, count: 5 });
    assert.deepEqual(selectSteps("1:3", 5), { start: 1, step: 1, count: 2 });
    assert.deepEqual(selectSteps("-2:", 5), { start: 3, step: 1, count: 2 });
    assert.deepEqual(selectSteps(":-4", 5), { start: 0, step: 1, count: 1 });
    assert.deepEqual(selectSteps("-100:100", 5), { start: 0, step: 1, count: 5 });
    assert.deepEqual(selectSteps("::2", 5), { start: 0, step: 2, count: 3 });
    assert.deepEqual(selectSteps("1:", 5), { start: 1, step: 1, count: 4 });
    assert.deepEqual(selectSteps(":", 5), { start: 0, step: 1, count: 5 });
    assert.deepEqual(selectSteps("-1", 5), { start: 4, step: 1, count: 1 });
    assert.deepEqual(selectSteps(" 2 : 4 ", 5), { start: 2, step: 1, count: 2 });
  });

  test("bad slices are input errors", () => {
    for (const spec of ["", "a:b", "1:2:3:4", "1.5:", "3:1", "5", "::0", "7:"]) {
      assert.throws(
        () => selectSteps(spec, 5),
        (e: unknown) => e instanceof EplbInputError && e.message.startsWith("steps"),
        spec,
      );
    }
  });
});
