/**
 * src/io/json.ts: JSON files are read as written (BOM tolerated) or refused in one line; an
 * integer JSON.parse would round is refused rather than planned with another value.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { checkJsonIntegers, looksLikeJson, readJson } from "../../src/io/json.js";
import { assertRefused } from "../helpers/refused.js";

const utf8 = (text: string) => new TextEncoder().encode(text);

const refused = (fn: () => unknown, message: RegExp) => assertRefused(fn, EplbFormatError, message);

describe("looksLikeJson", () => {
  test("an array or object after an optional BOM and white space", () => {
    assert.equal(looksLikeJson(utf8('{"a": 1}')), true);
    assert.equal(looksLikeJson(utf8(" \r\n\t[[1]]")), true);
    assert.equal(looksLikeJson(new Uint8Array([0xef, 0xbb, 0xbf, 0x5b, 0x5d])), true);
    for (const text of ["1,2,3", "layer_id,expert_id", "num_slots: 4", "", "   "]) {
      assert.equal(looksLikeJson(utf8(text)), false, JSON.stringify(text));
    }
  });

  test("stops looking after 4 KiB of white space", () => {
    assert.equal(looksLikeJson(utf8(`${" ".repeat(4000)}[1]`)), true);
    assert.equal(looksLikeJson(utf8(`${" ".repeat(5000)}[1]`)), false);
  });
});

describe("readJson", () => {
  test("parses UTF-8 with or without a BOM", () => {
    assert.deepEqual(readJson(utf8('{"phy2log": [[0, 1, 0]]}'), "p.json"), {
      phy2log: [[0, 1, 0]],
    });
    const bom = new Uint8Array([0xef, 0xbb, 0xbf, ...utf8('{"name": "é"}')]);
    assert.deepEqual(readJson(bom, "b.json"), { name: "é" });
  });

  test("a syntax error is one line naming the file, with the parser's words", () => {
    refused(() => readJson(utf8('{"a": [1, 2'), "cut.json"), /^cut\.json: invalid JSON: /);
    refused(() => readJson(utf8('{"a":\n\n 1,}'), "nl.json"), /^nl\.json: invalid JSON: /);
  });
});

describe("checkJsonIntegers", () => {
  test("integers up to 2^53 - 1 pass, in either sign", () => {
    checkJsonIntegers("[9007199254740991, -9007199254740991, 1234567890123456]", "f");
  });

  test("an integer beyond is refused naming it and its position", () => {
    refused(
      () => checkJsonIntegers('{"x": [1, 9007199254740993]}', "big.json"),
      /^big\.json: integer 9007199254740993 at character 10 is beyond \+-2\^53 and cannot be represented exactly$/,
    );
    refused(
      () => checkJsonIntegers("[-9007199254740993]", "neg.json"),
      /integer -9007199254740993 at character 1/,
    );
    refused(
      () => readJson(utf8("[[18446744073709551615]]"), "u64.json"),
      /integer 18446744073709551615/,
    );
  });

  test("floats, and digits inside strings, are not integers", () => {
    checkJsonIntegers("[9007199254740993.0, 1e300, 90071992547409930e-1]", "f");
    checkJsonIntegers('{"id": "9007199254740993", "k\\"99999999999999999": 1}', "f");
  });
});
