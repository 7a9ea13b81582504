/**
 * src/io/csv-long.ts: SGLang's old long CSV (`layer_id,expert_id,count`, absent pairs = 0) is
 * read into counts per (layer, expert) with the layer ids kept, or refused naming the line.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { isLongCsv, readLongCsv } from "../../src/io/csv-long.js";
import { EplbFormatError } from "../../src/io/errors.js";
import type { Tensor } from "../../src/io/tensor.js";
import { assertRefused } from "../helpers/refused.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const read = (text: string) => {
  const v = readLongCsv(utf8(text), "d.csv");
  const ids = v.layer_ids as Tensor;
  const counts = v.counts as Tensor;
  return { ids: [...ids.data], shape: counts.shape, counts: [...counts.data], dtype: counts.dtype };
};
const refused = (text: string, message: string) =>
  assertRefused(() => readLongCsv(utf8(text), "d.csv"), EplbFormatError, message);

describe("isLongCsv", () => {
  test("true for the header, after a BOM, blank lines, quotes and spaces", () => {
    assert.equal(isLongCsv(utf8("layer_id,expert_id,count\n3,0,5\n")), true);
    assert.equal(isLongCsv(utf8('\ufeff\n\r\n "layer_id" , expert_id ,"count"\r\n')), true);
  });

  test("false for a wide CSV, another header order, an extra column or an empty file", () => {
    assert.equal(isLongCsv(utf8("1,2,3\n4,5,6\n")), false);
    assert.equal(isLongCsv(utf8("expert_id,layer_id,count\n")), false);
    assert.equal(isLongCsv(utf8("layer_id,expert_id,count,rank\n")), false);
    assert.equal(isLongCsv(utf8("")), false);
    assert.equal(isLongCsv(utf8("\n\n")), false);
  });
});

describe("readLongCsv", () => {
  test("rows by ascending layer id, experts 0..max id, absent pairs 0, repeats summed", () => {
    const r = read("layer_id,expert_id,count\n4,0,2\n3,1,5\n4,0,3\n3,2,1\n");
    assert.deepEqual(r.ids, [3, 4]);
    assert.deepEqual(r.shape, [2, 3]);
    assert.deepEqual(r.counts, [0, 5, 1, 5, 0, 0]);
    assert.equal(r.dtype, "int64");
  });

  test("CRLF, a BOM, blank lines and spaces around cells are fine", () => {
    const r = read("\ufefflayer_id,expert_id,count\r\n\r\n 3 , 0 , 7 \r\n");
    assert.deepEqual(r.counts, [7]);
    assert.deepEqual(r.ids, [3]);
  });

  test("a row that is not three integers >= 0 is refused naming its line", () => {
    const h = "layer_id,expert_id,count\n";
    const rule = "is not layer_id,expert_id,count as integers >= 0";
    refused(`${h}3,0,5\n3,1\n`, `d.csv: line 3 ("3,1") ${rule}`);
    refused(`${h}3,0,-1\n`, `d.csv: line 2 ("3,0,-1") ${rule}`);
    refused(`${h}3,0,1.5\n`, `d.csv: line 2 ("3,0,1.5") ${rule}`);
    refused(`${h}3,,1\n`, `d.csv: line 2 ("3,,1") ${rule}`);
    refused(`${h}3,0,x\n`, `d.csv: line 2 ("3,0,x") ${rule}`);
    refused(`${h}3,0,1,2\n`, `d.csv: line 2 ("3,0,1,2") ${rule}`);
  });

  test("a header without rows, and an expert id beyond any model, are refused", () => {
    refused(
      "layer_id,expert_id,count\n\n",
      "d.csv: has the layer_id,expert_id,count header but no rows",
    );
    refused(
      "layer_id,expert_id,count\n3,65536,1\n",
      "d.csv: expert_id 65536 is beyond any MoE model (at most 65535 is read)",
    );
    assert.deepEqual(read("layer_id,expert_id,count\n3,65535,1\n").shape, [1, 65536]);
  });

  test("matches a plain sum over the rows, for random row lists", () => {
    const row = fc.tuple(fc.nat(5), fc.nat(7), fc.nat(1000));
    fc.assert(
      fc.property(fc.array(row, { minLength: 1, maxLength: 30 }), (rows) => {
        const r = read(`layer_id,expert_id,count\n${rows.map((x) => x.join(",")).join("\n")}\n`);
        const ids = [...new Set(rows.map((x) => x[0]))].sort((a, b) => a - b);
        const experts = Math.max(...rows.map((x) => x[1])) + 1;
        const want = new Array(ids.length * experts).fill(0);
        for (const [l, e, c] of rows) want[ids.indexOf(l) * experts + e] += c;
        assert.deepEqual(r.ids, ids);
        assert.deepEqual(r.shape, [ids.length, experts]);
        assert.deepEqual(r.counts, want);
      }),
      { seed: 7, numRuns: 100 },
    );
  });
});
