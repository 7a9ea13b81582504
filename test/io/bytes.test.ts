/**
 * src/io/bytes.ts: every reader of untrusted files goes through these, so a truncated or lying
 * file is a one-line EplbFormatError naming the file, never a RangeError or a silent undefined.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  ByteReader,
  copyBytes,
  decodeLatin1,
  decodeUtf8,
  oneLine,
  printable,
} from "../../src/io/bytes.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { assertRefused } from "../helpers/refused.js";

const formatError = (fn: () => unknown, message: string) =>
  assertRefused(fn, EplbFormatError, message);

describe("ByteReader", () => {
  test("reads little-endian integers and big-endian float64 in sequence", () => {
    const bytes = new Uint8Array(27);
    const view = new DataView(bytes.buffer);
    bytes[0] = 0xfe;
    view.setUint16(1, 0xbeef, true);
    view.setUint32(3, 0xdeadbeef, true);
    view.setInt32(7, -5, true);
    view.setUint32(11, 7, true); // u64 low word
    view.setUint32(15, 1, true); // u64 high word: 2^32 + 7
    view.setFloat64(19, 1.5, false);
    const r = new ByteReader(bytes, "x.bin", "header");
    assert.equal(r.u8(), 0xfe);
    assert.equal(r.u16(), 0xbeef);
    assert.equal(r.u32(), 0xdeadbeef);
    assert.equal(r.i32(), -5);
    assert.equal(r.u64(), 2 ** 32 + 7);
    assert.equal(r.f64be(), 1.5);
    assert.equal(r.remaining, 0);
  });

  test("a read past the end names the file, what is read, the offset and what is left", () => {
    const r = new ByteReader(new Uint8Array([1, 0, 2]), "x.bin", "zip central directory");
    assert.equal(r.u16(), 1);
    formatError(
      () => r.u32(),
      "x.bin: truncated zip central directory: needs 4 bytes at offset 2, 1 left",
    );
    assert.equal(r.pos, 2, "a failed read does not move the cursor");
    formatError(
      () => r.take(2),
      "x.bin: truncated zip central directory: needs 2 bytes at offset 2, 1 left",
    );
  });

  test("the window's end bounds reads, not the buffer's", () => {
    const r = new ByteReader(new Uint8Array([1, 2, 3, 4, 5, 6]), "f", "member", 1, 3);
    assert.equal(r.remaining, 2);
    assert.deepEqual([...r.take(2)], [2, 3]);
    formatError(() => r.u8(), "f: truncated member: needs 1 bytes at offset 3, 0 left");
  });

  test("a 64-bit size above 2^53 is refused rather than rounded", () => {
    const bytes = new Uint8Array(16);
    const view = new DataView(bytes.buffer);
    view.setUint32(0, 0xffffffff, true);
    view.setUint32(4, 0x1fffff, true); // 2^53 - 1: exact
    view.setUint32(12, 0x200000, true); // 2^53: refused
    const r = new ByteReader(bytes, "big.npy", "header");
    assert.equal(r.u64(), 2 ** 53 - 1);
    formatError(() => r.u64(), "big.npy: header: 64-bit size at offset 8 is larger than 2^53");
  });

  test("take returns a view of the bytes (no copy), over a subarray too", () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3]);
    const r = new ByteReader(backing.subarray(2), "f", "data");
    assert.equal(r.u8(), 1);
    const t = r.take(2);
    assert.deepEqual([...t], [2, 3]);
    backing[4] = 7;
    assert.equal(t[1], 7);
  });
});

describe("text from files", () => {
  test("printable quotes, escapes and cuts a hostile name to one short line", () => {
    assert.equal(printable("posix\nsystem"), '"posix\\nsystem"');
    const long = printable("x".repeat(1000), 20);
    assert.equal(long, `"${"x".repeat(17)}..."`);
    assert.ok(!long.includes("\n"));
  });

  test("oneLine turns control and line-separator characters into spaces and cuts", () => {
    assert.equal(oneLine("a\nb\r\tc\u2028d\u0000e"), "a b  c d e");
    assert.equal(oneLine("y".repeat(150)).length, 100);
    assert.ok(oneLine("y".repeat(150)).endsWith("..."));
    assert.equal(oneLine("short"), "short");
  });

  test("decodeUtf8 replaces invalid sequences and keeps a BOM for the caller", () => {
    assert.equal(decodeUtf8(new Uint8Array([0x68, 0xc3, 0xa9]), "f"), "hé");
    assert.equal(decodeUtf8(new Uint8Array([0x61, 0xff, 0x62]), "f"), "a\ufffdb");
    assert.equal(decodeUtf8(new Uint8Array([0xef, 0xbb, 0xbf, 0x7b]), "f"), "\ufeff{");
  });

  test("decodeLatin1 maps each byte to the same code point (not windows-1252)", () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const text = decodeLatin1(all);
    assert.equal(text.length, 256);
    for (let i = 0; i < 256; i++) assert.equal(text.charCodeAt(i), i);
    // 0x80 is U+20AC (euro) in windows-1252, U+0080 in Latin-1.
    assert.equal(decodeLatin1(new Uint8Array([0x80])), "\u0080");
  });
});

describe("copyBytes", () => {
  test("copies a view into its own buffer, so later changes to the file's bytes do not leak", () => {
    const file = Buffer.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    const view = file.subarray(3, 11);
    const copy = copyBytes(view);
    assert.equal(copy.byteOffset, 0);
    assert.equal(copy.buffer.byteLength, 8);
    assert.deepEqual([...copy], [3, 4, 5, 6, 7, 8, 9, 10]);
    file[3] = 99;
    assert.equal(copy[0], 3);
  });
});
