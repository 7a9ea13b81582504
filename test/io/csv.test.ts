/**
 * src/io/csv.ts: a CSV of loads (one row per layer) is read cell for cell as written, or refused
 * naming the line and column; a header, comments and blank lines are skipped, nothing guessed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { MAX_CSV_COLUMNS, readCsv } from "../../src/io/csv.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { assertRefused } from "../helpers/refused.js";

const csv = (text: string, file = "loads.csv") => readCsv(new TextEncoder().encode(text), file);

const refused = (text: string, message: RegExp) =>
  assertRefused(() => csv(text), EplbFormatError, message);

describe("readCsv", () => {
  test("one row per layer, one column per expert, float64", () => {
    const t = csv("1,2,3\n4,5,6.5\n");
    assert.deepEqual(t.shape, [2, 3]);
    assert.equal(t.dtype, "float64");
    assert.deepEqual(Array.from(t.data), [1, 2, 3, 4, 5, 6.5]);
  });

  test("skips a BOM, a header row, # comments, blank lines; CRLF, spaces and quotes are fine", () => {
    const t = csv('\ufeffe0,e1\r\n# numpy.savetxt header\r\n\r\n "1" , 2e3 \r\n\t+3,-0\r\n');
    assert.deepEqual(t.shape, [2, 2]);
    assert.deepEqual(Array.from(t.data), [1, 2000, 3, -0]);
  });

  test("NaN and infinities parse, so the loads check can name them", () => {
    const t = csv("nan,inf,-Infinity\n");
    assert.ok(Number.isNaN(t.data[0]));
    assert.deepEqual(Array.from(t.data.subarray(1)), [
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]);
  });

  test("only the first row may be a header; a word later is refused naming line and column", () => {
    refused("1,2\n3,x\n", /^loads\.csv: line 2 column 2: "x" is not a number$/);
    refused("a,b\nc,d\n", /^loads\.csv: line 2 column 1: "c" is not a number$/);
  });

  test("a row of another width is refused, with a hint when ; or tabs separate", () => {
    refused("1,2,3\n4,5\n", /^loads\.csv: line 2 has 2 columns, the first data row has 3$/);
    refused(
      "1,2\n3;4\n",
      /line 2 has 1 columns, the first data row has 2 \(only commas separate columns\)$/,
    );
  });

  test("no data row, an integer beyond 2^53 or too many columns are refused", () => {
    refused("e0,e1\n# nothing\n", /^loads\.csv: CSV has no data rows$/);
    refused("", /CSV has no data rows/);
    refused(
      "1,9007199254740993\n",
      /line 1 column 2: integer "9007199254740993" is beyond \+-2\^53/,
    );
    refused(
      `${"1,".repeat(MAX_CSV_COLUMNS)}1\n`,
      new RegExp(`line 1 has more than ${MAX_CSV_COLUMNS} columns`),
    );
    assert.deepEqual(csv("9007199254740991\n").shape, [1, 1]);
  });

  test("a cell longer than any number is not read as one", () => {
    refused(`1,2\n3,${"1".repeat(300)}\n`, /line 2 column 2: "1{40,}.*" is not a number/);
  });
});
