/**
 * SGLang recorder dumps built by test/fixtures/engines/make_sglang.py with torch.save of the
 * structures SGLang saves; expected.json holds the loads SGLang meant, computed in Python with
 * plain loops. Every figure here is compared element by element.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { sglangPassBalance } from "../../src/core/evaluation/engine-metrics.js";
import type { LoadMatrix } from "../../src/core/model/matrix.js";
import { readLongCsv } from "../../src/io/csv-long.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { classifyValue } from "../../src/io/load-values.js";
import { readLoads, readTensorFile, readTrace, readValue } from "../../src/io/read.js";
import { readRouting } from "../../src/io/sglang-routing.js";
import { readLoadSources } from "../../src/io/sources.js";
import type { FileValue } from "../../src/io/value.js";
import { repoRoot } from "../helpers/cli.js";

const dir = join(repoRoot, "test/fixtures/engines/sglang");
const at = (name: string) => join(dir, name);

interface Expected {
  layers: number;
  experts: number;
  slots: number;
  epSize: number;
  physicalToLogicalMap: number[][];
  [file: string]: unknown;
  per_pass: {
    files: string[];
    loads: number[][];
    rank0Loads: number[][];
    passIds: number[];
    passes: number[][][];
    sglangBalancednessPerPass: number[];
  };
  per_token: {
    files: string[];
    loads: number[][];
    routing: {
      tokens: number;
      k: number;
      topk: number[][][];
      rank: number[];
      forwardPassId: number[];
    };
  };
  same_tokens: {
    perToken: string[];
    perPass: string[];
    passIds: number[];
    loads: number[][];
    passes: number[][][];
    routing: { tokens: number; topk: number[][][]; forwardPassId: number[] };
  };
  draft: {
    perToken: string[];
    perPass: string[];
    k: number;
    draftRecords: number;
    passIds: number[];
    loads: number[][];
    passes: number[][][];
    routing: { tokens: number; topk: number[][][] };
  };
  csv: { layerIds: number[]; loads: number[][] };
  csv_rank0: { file: string; layerIds: number[]; loads: number[][] };
}

const expected = JSON.parse(readFileSync(at("expected.json"), "utf8")) as Expected;

/** A routing's top-k as `[token][layer][choice]`, as expected.json writes it. */
function tokenRows(r: { tokens: number; layers: number; k: number; topk: Int32Array }) {
  const out: number[][][] = [];
  for (let t = 0; t < r.tokens; t++) {
    const layers = [];
    for (let l = 0; l < r.layers; l++) {
      layers.push(
        Array.from(r.topk.subarray((t * r.layers + l) * r.k, (t * r.layers + l + 1) * r.k)),
      );
    }
    out.push(layers);
  }
  return out;
}

function rows(m: LoadMatrix): number[][] {
  const out: number[][] = [];
  for (let l = 0; l < m.layers; l++) {
    out.push(Array.from(m.data.subarray(l * m.experts, (l + 1) * m.experts)));
  }
  return out;
}

const STAT = [
  "stat/expert_distribution_recorder_1760000000.1.pt",
  "stat/expert_distribution_recorder_1760000000.2.pt",
  "stat_approx/expert_distribution_recorder_1760000001.5.pt",
];

describe("SGLang stat / stat_approx dumps (ring buffer)", () => {
  for (const name of STAT) {
    test(`${name}: every row of the ring summed, as SGLang's logical_count means`, () => {
      const want = (expected[name] as { loads: number[][] }).loads;
      assert.deepEqual(rows(readLoads(at(name))), want);
    });
  }

  test("the fixture is what SGLang saves: int32 [buffer, layers, experts], rank 0", () => {
    const { value } = readValue(at(STAT[1]));
    const v = value as { rank: number; logical_count: { dtype: string; shape: number[] } };
    assert.equal(v.rank, 0);
    assert.equal(v.logical_count.dtype, "int32");
    assert.deepEqual(v.logical_count.shape, [8, expected.layers, expected.experts]);
  });

  test("--steps is refused in one line: the rows are not in time order", () => {
    for (const steps of ["-2:", "0:3", "4"]) {
      assert.throws(
        () => readLoads(at(STAT[1]), { steps }),
        (e: unknown) =>
          e instanceof EplbFormatError &&
          /ring buffer/.test(e.message) &&
          /not in time order/.test(e.message) &&
          !e.message.includes("\n"),
      );
    }
  });

  test("it is no trace to replay, unless the user names the entry (buffer size -1)", () => {
    assert.throws(
      () => readTrace(at(STAT[1])),
      (e: unknown) => e instanceof EplbFormatError && /--key logical_count/.test(e.message),
    );
    assert.equal(readTrace(at(STAT[1]), { key: "logical_count" }).steps, 8);
    assert.equal(readTensorFile(at(STAT[1])).kind, "loads");
  });

  test("SGLang's own logged window balancedness is kept when the dump has it", () => {
    assert.equal(readLoadSources([at(STAT[1])]).loggedBalancedness, 0.87);
    assert.equal(readLoadSources([at(STAT[0])]).loggedBalancedness, undefined); // None
  });

  test("an all-zero dump warns", () => {
    const s = readLoadSources([at("stat_empty.pt")]);
    assert.equal(s.warnings.length, 1);
    assert.match(s.warnings[0], /all zero/);
    assert.deepEqual(
      rows(readLoadSources([at(STAT[0])]).loads),
      (expected[STAT[0]] as { loads: number[][] }).loads,
    );
    assert.deepEqual(readLoadSources([at(STAT[0])]).warnings, []);
  });
});

describe("SGLang per_pass dumps (one file per rank)", () => {
  const files = expected.per_pass.files.map(at);

  test("one rank's file: physical counts folded through last_physical_to_logical_map", () => {
    // Regression: this file used to be read as its map ([3, 10] of expert ids), exit 0.
    const m = readLoads(files[0]);
    assert.equal(m.layers, expected.layers);
    assert.equal(m.experts, expected.experts);
    assert.deepEqual(rows(m), expected.per_pass.rank0Loads);
    assert.notDeepEqual(rows(m), expected.physicalToLogicalMap);
    assert.equal(classifyValue(readValue(files[0]).value, "f", { limit: 1e9 }).kind, "loads");
  });

  test("both ranks' files, or their folder, summed", () => {
    for (const paths of [files, [at("per_pass")], [files[1], files[0]]]) {
      const s = readLoadSources(paths);
      assert.equal(s.files, 2);
      assert.deepEqual(s.kinds, ["SGLang per_pass dump"]);
      assert.deepEqual(rows(s.loads), expected.per_pass.loads);
      assert.deepEqual(s.ranks, [0, 1]);
      assert.deepEqual(s.warnings, []);
    }
  });

  test("forward passes: ranks of one pass summed, passes in id order", () => {
    const s = readLoadSources([at("per_pass")]);
    assert.deepEqual(s.passIds, expected.per_pass.passIds);
    const p = s.passes;
    assert.ok(p);
    const n = p.layers * p.experts;
    const got = [];
    for (let t = 0; t < p.steps; t++) {
      got.push(
        rows({ layers: p.layers, experts: p.experts, data: p.data.subarray(t * n, (t + 1) * n) }),
      );
    }
    assert.deepEqual(got, expected.per_pass.passes);
  });

  test("--steps selects forward passes across the ranks", () => {
    const s = readLoadSources([at("per_pass")], { steps: "-2:" });
    const want = expected.per_pass.passes[2].map((row, l) =>
      row.map((v, e) => v + expected.per_pass.passes[3][l][e]),
    );
    assert.deepEqual(rows(s.loads), want);
    assert.deepEqual(s.passIds, expected.per_pass.passIds.slice(2));
  });

  test("SGLang's balancedness per pass, from the recorded physical counts", () => {
    const s = readLoadSources([at("per_pass")]);
    assert.ok(s.recorded && s.passes);
    const b = sglangPassBalance(
      s.recorded.physical,
      s.passes.steps,
      s.passes.layers,
      s.recorded.slots,
      expected.epSize,
    );
    expected.per_pass.sglangBalancednessPerPass.forEach((want, t) => {
      assert.ok(Math.abs(b.perPass[t] - want) < 1e-12, `pass ${t}: ${b.perPass[t]} vs ${want}`);
    });
  });

  test("a dump with no recorded pass warns, and is no trace", () => {
    const s = readLoadSources([at("per_pass_empty.pt")]);
    assert.equal(s.warnings.length, 2);
    assert.match(s.warnings[0], /no recorded forward pass/);
    assert.match(s.warnings[1], /all zero/);
    assert.throws(
      () => readTrace(at("per_pass_empty.pt")),
      (e: unknown) => e instanceof EplbFormatError && /no recorded forward pass/.test(e.message),
    );
  });
});

describe("SGLang per_token dumps", () => {
  test("loads: each token's top-k slots (not -1) counted and folded onto experts", () => {
    const s = readLoadSources(expected.per_token.files.map(at));
    assert.deepEqual(rows(s.loads), expected.per_token.loads);
    assert.deepEqual(s.kinds, ["SGLang per_token dump"]);
  });

  test("readRouting: logical top-k per token and layer, with the token's rank", () => {
    const r = readRouting(at("per_token"));
    const want = expected.per_token.routing;
    assert.equal(r.tokens, want.tokens);
    assert.equal(r.layers, expected.layers);
    assert.equal(r.k, want.k);
    assert.equal(r.experts, expected.experts);
    const topk = tokenRows(r);
    assert.deepEqual(topk, want.topk);
    assert.deepEqual(Array.from(r.rank), want.rank);
    assert.deepEqual(Array.from(r.forwardPassId), want.forwardPassId);
  });

  test("readRouting refuses a dump without tokens, in one line", () => {
    assert.throws(
      () => readRouting(at(expected.per_pass.files[0])),
      (e: unknown) =>
        e instanceof EplbFormatError && /per_token/.test(e.message) && !e.message.includes("\n"),
    );
  });
});

describe("ranks that recorded the same tokens (SGLang without DeepEP routes every token on every rank)", () => {
  const same = expected.same_tokens;
  // Only rank 1's file holds repeats (rank 0's records came first).
  const repeat =
    /_same_tokens\/expert_distribution_recorder_\d+\.\d+_1\.pt: 3 records in 3 forward passes repeat another rank's record of the same pass/;

  for (const [kind, files] of [
    ["per_token", same.perToken],
    ["per_pass", same.perPass],
  ] as const) {
    test(`${kind}: each pass's tokens counted once, not once per rank, and a warning naming the file`, () => {
      const s = readLoadSources(files.map(at));
      assert.deepEqual(rows(s.loads), same.loads);
      assert.deepEqual(s.passIds, same.passIds);
      const passes = s.passes;
      assert.ok(passes);
      const got = [];
      for (let t = 0; t < passes.steps; t++) {
        const n = passes.layers * passes.experts;
        const step = passes.data.subarray(t * n, (t + 1) * n);
        got.push(rows({ layers: passes.layers, experts: passes.experts, data: step }));
      }
      assert.deepEqual(got, same.passes);
      assert.deepEqual(s.ranks, [0, 1]);
      assert.equal(s.warnings.length, 1, s.warnings.join("\n"));
      assert.match(s.warnings[0], repeat);
      assert.match(s.warnings[0], /eplb counted each pass's tokens once, not once per rank/);
      assert.ok(!s.warnings[0].includes("\n"));
      // The physical counts stay every rank's sum, as SGLang's balancedness log sums them: here
      // the ranks chose other replicas, so the sum is not twice rank 0's.
      const [rank0, rank1] = files.map((f) => readLoadSources([at(f)]).recorded?.physical);
      assert.ok(rank0 && rank1);
      assert.notDeepEqual(rank0, rank1);
      assert.deepEqual(
        s.recorded?.physical,
        rank0.map((v, i) => v + rank1[i]),
      );
    });
  }

  test("distinct ranks (SGLang with DeepEP: each rank its own tokens) are summed without a warning", () => {
    for (const files of [expected.per_pass.files, expected.per_token.files]) {
      assert.deepEqual(readLoadSources(files.map(at)).warnings, []);
    }
  });

  test("readRouting: each repeated token once, and the warning", () => {
    const r = readRouting(at("per_token_same_tokens"));
    assert.equal(r.tokens, same.routing.tokens);
    const topk = tokenRows(r);
    assert.deepEqual(topk, same.routing.topk);
    assert.deepEqual(Array.from(r.forwardPassId), same.routing.forwardPassId);
    assert.match(r.repeated ?? "", repeat);
    assert.match(r.repeated ?? "", /eplb kept each token once, with no source rank/);
    assert.equal(readRouting(at("per_token")).repeated, undefined);
  });
});

describe("newer SGLang: speculative-draft records, the model's top-k, router inputs", () => {
  const draft = expected.draft;
  const leftOut =
    /2 files \(\S*expert_distribution_recorder_1760000\d+\.0_0\.pt, \.\.\.\): 4 records with gatherer_key "speculative_draft" left out: only "primary" records are the served model's forward passes/;

  for (const [kind, files] of [
    ["per_token", draft.perToken],
    ["per_pass", draft.perPass],
  ] as const) {
    test(`${kind}: only the "primary" records are the loads, and one warning says what was left out`, () => {
      const s = readLoadSources(files.map(at));
      // The fixture's draft records share the target passes' ids: read, they would land there.
      assert.deepEqual(rows(s.loads), draft.loads);
      assert.deepEqual(s.passIds, draft.passIds);
      const passes = s.passes;
      assert.ok(passes);
      const n = passes.layers * passes.experts;
      const got = [0, 1].map((t) =>
        rows({
          layers: passes.layers,
          experts: passes.experts,
          data: passes.data.subarray(t * n, (t + 1) * n),
        }),
      );
      assert.deepEqual(got, draft.passes);
      assert.equal(s.warnings.length, 1, s.warnings.join("\n"));
      assert.match(s.warnings[0], leftOut);
      assert.ok(!s.warnings[0].includes("\n"));
    });
  }

  test("one file read alone warns too (readLoads)", () => {
    const notes: string[] = [];
    const loads = draft.perPass.map((f) =>
      readLoads(at(f), { onNote: (note) => notes.push(`${note.level}: ${note.text}`) }),
    );
    const sum = loads[0].data.map((v, i) => v + loads[1].data[i]);
    assert.deepEqual(
      rows({ layers: loads[0].layers, experts: loads[0].experts, data: sum }),
      draft.loads,
    );
    assert.equal(notes.length, 2, notes.join("\n"));
    assert.match(
      notes[0],
      /^warning: .*_0\.pt: 2 records with gatherer_key "speculative_draft" left out/,
    );
  });

  test("readRouting: the model's top-k width (not 8), primary tokens only, and the warning", () => {
    const r = readRouting(draft.perToken.map(at));
    assert.equal(r.k, draft.k);
    assert.equal(r.tokens, draft.routing.tokens);
    assert.deepEqual(tokenRows(r), draft.routing.topk);
    assert.match(r.otherScopes ?? "", leftOut);
    assert.equal(r.repeated, undefined);
    assert.equal(readRouting(at("per_token")).otherScopes, undefined);
  });
});

describe("SGLang's older CSV (layer_id,expert_id,count)", () => {
  test("one rank: rows are model layers in id order, absent pairs 0", () => {
    const s = readLoadSources([at(expected.csv_rank0.file)]);
    assert.deepEqual(rows(s.loads), expected.csv_rank0.loads);
    assert.deepEqual(s.layerIds, expected.csv_rank0.layerIds);
    // Regression: it used to be read as a [rows, 3] matrix.
    assert.equal(readLoads(at(expected.csv_rank0.file)).experts, expected.experts);
  });

  test("the ranks' files merged by (layer, expert), even when a rank saw fewer experts", () => {
    const s = readLoadSources([at("csv")]);
    assert.equal(s.files, 2);
    assert.deepEqual(rows(s.loads), expected.csv.loads);
    assert.deepEqual(s.layerIds, expected.csv.layerIds);
  });
});

describe("refusals of the multi-file reader", () => {
  test("a file given twice (or inside a folder also given) is refused, not counted twice", () => {
    const f = at(expected.per_pass.files[0]);
    for (const paths of [
      [f, f],
      [at("per_pass"), f],
    ]) {
      assert.throws(
        () => readLoadSources(paths),
        (e: unknown) => e instanceof EplbFormatError && /given twice/.test(e.message),
      );
    }
  });

  test("a long CSV with an absurd expert id is refused in one line", () => {
    assert.throws(
      () =>
        readLongCsv(new TextEncoder().encode("layer_id,expert_id,count\n3,99999999,1\n"), "x.csv"),
      (e: unknown) => e instanceof EplbFormatError && /beyond any MoE model/.test(e.message),
    );
    assert.throws(
      () => readLongCsv(new TextEncoder().encode("layer_id,expert_id,count\n3,-1,1\n"), "x.csv"),
      (e: unknown) => e instanceof EplbFormatError && /integers >= 0/.test(e.message),
    );
  });
});

describe("hand-made or re-saved dumps", () => {
  test("a per_pass dump as JSON (nested lists) reads the same way, and bad records are one-line errors", () => {
    const dump = (record: unknown, map: unknown = [[0, 1, 0]]) =>
      ({ records: [record], last_physical_to_logical_map: map }) as FileValue;
    const ok = classifyValue(
      dump({
        forward_pass_id: 1,
        rank: 0,
        gatherer_key: "primary",
        global_physical_count: [[1, 2, 3]],
      }),
      "d.json",
      { limit: 1e6 },
    );
    assert.equal(ok.kind, "loads");
    if (ok.kind === "loads") assert.deepEqual(Array.from(ok.loads.data), [4, 2]);
    const bad: [unknown, unknown, RegExp][] = [
      [
        { forward_pass_id: 1, rank: 0, global_physical_count: [[1, 2]] },
        undefined,
        /has shape \[1, 2\]/,
      ],
      [
        { forward_pass_id: 1, rank: 0, global_physical_count: [[1, -2, 3]] },
        undefined,
        /must be finite and >= 0/,
      ],
      [
        { forward_pass_id: 1, rank: 0, topk_ids_of_layer: [[[0, 7]]] },
        undefined,
        /slot ids are 0\.\.2/,
      ],
      [{ forward_pass_id: "x", rank: 0 }, undefined, /forward_pass_id is a string/],
      [5, undefined, /records\[0\] is not a dict/],
      [
        { forward_pass_id: 1, rank: 0, global_physical_count: [[1, 2]] },
        [[0, -1]],
        /last_physical_to_logical_map\[0\]\[1\] is -1/,
      ],
    ];
    for (const [record, map, pattern] of bad) {
      assert.throws(
        () => classifyValue(dump(record, map), "d.json", { limit: 1e6 }),
        (e: unknown) =>
          e instanceof EplbFormatError && pattern.test(e.message) && !e.message.includes("\n"),
        String(pattern),
      );
    }
  });
});
