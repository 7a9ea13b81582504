/**
 * src/io/crc32.ts: the checksum every ZIP this package writes (.pt, .npz) stores and every ZIP it
 * reads is checked against; a wrong value makes torch and numpy refuse the file.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import * as zlib from "node:zlib";
import fc from "fast-check";
import { crc32 } from "../../src/io/crc32.js";

const utf8 = (s: string) => new TextEncoder().encode(s);

/** Bit by bit, no table: the definition the table-driven loop must agree with. */
function plainCrc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

// zlib.crc32 exists from Node 20.15 / 22.2 only; the package supports every Node 20.
const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

describe("crc32", () => {
  test("the published check values of CRC-32/ISO-HDLC", () => {
    assert.equal(crc32(utf8("123456789")), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
    assert.equal(crc32(utf8("a")), 0xe8b7be43);
    assert.equal(crc32(utf8("The quick brown fox jumps over the lazy dog")), 0x414fa339);
    assert.equal(crc32(new Uint8Array(32)), 0x190a55ad);
    assert.equal(crc32(new Uint8Array(32).fill(0xff)), 0xff6cab0b);
    // Chunks continue a running checksum.
    assert.equal(crc32(utf8("6789"), crc32(utf8("12345"))), 0xcbf43926);
  });

  test("always an unsigned 32-bit integer, even when the top bit is set", () => {
    const v = crc32(utf8("123456789"));
    assert.ok(v > 0x7fffffff && Number.isInteger(v) && v <= 0xffffffff);
  });

  test("a running checksum over chunks equals the checksum of the whole", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(), (bytes, at) => {
        const cut = bytes.length === 0 ? 0 : at % (bytes.length + 1);
        const whole = crc32(bytes);
        assert.equal(crc32(bytes.subarray(cut), crc32(bytes.subarray(0, cut))), whole);
      }),
      { seed: 15, numRuns: 200 },
    );
  });

  test("agrees with a bit-by-bit re-implementation on random bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        assert.equal(crc32(bytes), plainCrc32(bytes));
      }),
      { seed: 16, numRuns: 200 },
    );
  });

  test("agrees with node:zlib's crc32 where this Node has it", {
    skip: zlibCrc32 ? false : "zlib.crc32 needs Node >= 20.15",
  }, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), fc.nat(), (bytes, prev) => {
        const z = zlibCrc32 as (data: Uint8Array, value?: number) => number;
        assert.equal(crc32(bytes), z(bytes));
        const previous = prev >>> 0;
        assert.equal(crc32(bytes, previous), z(bytes, previous));
      }),
      { seed: 17, numRuns: 200 },
    );
  });
});
