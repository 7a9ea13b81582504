/**
 * src/io/zip-write.ts: the ZIP container of every .pt eplb writes. Its entries must be stored,
 * their data aligned as torch lays it out, their CRCs right, and its directory readable by any
 * ZIP reader; what it cannot write (non-ASCII names, ZIP64 sizes) is refused, never truncated.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";
import { crc32 } from "../../src/io/crc32.js";
import { openZip } from "../../src/io/zip.js";
import { writeStoredZip } from "../../src/io/zip-write.js";
import { localEntries } from "./support.js";

const ascii = (s: string) => new TextEncoder().encode(s);

describe("writeStoredZip", () => {
  test("stored entries, data 64-byte aligned, CRCs valid, read back by the zip reader", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ n: fc.stringMatching(/^[a-z]{1,12}$/), d: fc.uint8Array() }), {
          minLength: 1,
          maxLength: 6,
        }),
        (files) => {
          const entries = files.map((f, i) => ({ name: `a/${i}${f.n}`, data: f.d }));
          const zip = writeStoredZip(entries);
          const local = localEntries(zip);
          assert.deepEqual(
            local.entries.map((e) => e.name),
            entries.map((e) => e.name),
          );
          for (const [i, e] of local.entries.entries()) {
            assert.equal(e.method, 0);
            assert.equal(e.dataAt % 64, 0, `${e.name} starts at ${e.dataAt}`);
            assert.deepEqual(zip.subarray(e.dataAt, e.dataAt + e.size), entries[i].data);
            assert.equal(e.crc, crc32(entries[i].data));
          }
          const read = openZip(zip, "t.zip");
          for (const e of entries) {
            assert.deepEqual(read.read(read.entries.get(e.name)!), e.data);
          }
        },
      ),
      { seed: 65, numRuns: 100 },
    );
  });

  test("any alignment is honoured, and the padding is torch's FB extra field of Zs", () => {
    for (const alignment of [1, 8, 64, 4096]) {
      const data = ascii("payload");
      const zip = writeStoredZip(
        [
          { name: "x", data },
          { name: "yy/z", data },
        ],
        alignment,
      );
      const { entries, centralAt } = localEntries(zip);
      for (const e of entries) assert.equal(e.dataAt % alignment, 0, `${alignment}: ${e.name}`);
      const v = new DataView(zip.buffer, zip.byteOffset);
      const extraLen = v.getUint16(28, true);
      assert.equal(v.getUint16(30 + 1, true), 0x4246, "FB");
      assert.equal(v.getUint16(30 + 1 + 2, true), extraLen - 4);
      assert.ok(zip.subarray(30 + 1 + 4, 30 + 1 + extraLen).every((b) => b === 0x5a));
      assert.equal(v.getUint32(centralAt, true), 0x02014b50, "the directory follows the data");
    }
  });

  test("the end record: entry count, directory size and offset, no comment; no archive is 22 bytes", () => {
    const empty = writeStoredZip([]);
    assert.deepEqual([...empty], [0x50, 0x4b, 0x05, 0x06, ...new Array(18).fill(0)]);
    assert.equal(openZip(empty, "e.zip").entries.size, 0);
    const zip = writeStoredZip([
      { name: "ab", data: ascii("1") },
      { name: "c", data: ascii("") },
    ]);
    const v = new DataView(zip.buffer, zip.byteOffset);
    const end = zip.length - 22;
    const { centralAt } = localEntries(zip);
    assert.equal(v.getUint32(end, true), 0x06054b50);
    assert.equal(v.getUint16(end + 8, true), 2);
    assert.equal(v.getUint16(end + 10, true), 2);
    assert.equal(v.getUint32(end + 12, true), 46 + 2 + 46 + 1);
    assert.equal(v.getUint32(end + 16, true), centralAt);
    assert.equal(v.getUint16(end + 20, true), 0);
  });

  test("the central directory repeats each entry's CRC, sizes and local offset", () => {
    const data = [ascii("first"), ascii("second entry")];
    const zip = writeStoredZip(data.map((d, i) => ({ name: `n${i}`, data: d })));
    const read = openZip(zip, "t.zip");
    const local = localEntries(zip).entries;
    data.forEach((d, i) => {
      const e = read.entries.get(`n${i}`)!;
      assert.equal(e.method, 0);
      assert.equal(e.size, d.length);
      assert.equal(e.compressedSize, d.length);
      assert.equal(e.crc32, crc32(d));
      const v = new DataView(zip.buffer, zip.byteOffset);
      assert.equal(v.getUint32(e.localOffset, true), 0x04034b50, "a local header sits there");
      assert.equal(e.localOffset + 30 + 2 + v.getUint16(e.localOffset + 28, true), local[i].dataAt);
    });
  });

  test("refuses names that are not printable ASCII, or empty", () => {
    for (const name of ["é", "a\nb", "", "tab\t"]) {
      assert.throws(
        () => writeStoredZip([{ name, data: new Uint8Array(1) }]),
        (e: unknown) =>
          e instanceof RangeError &&
          e.message === `zip entry name ${JSON.stringify(name)} must be printable ASCII`,
      );
    }
  });

  test("refuses an archive that would need ZIP64 instead of writing a broken one", () => {
    const data = new Uint8Array(0);
    const entries = Array.from({ length: 0xffff }, (_, i) => ({ name: `e${i}`, data }));
    // Regression: 65535 entries were written with 0xffff in the end record, the value that
    // tells readers (eplb's own, APPNOTE 4.4.1.4) to look for a ZIP64 record that was not there.
    assert.throws(
      () => writeStoredZip(entries, 1),
      (e: unknown) => e instanceof RangeError && /65535 entries needs ZIP64$/.test(e.message),
    );
    assert.equal(openZip(writeStoredZip(entries.slice(1), 1), "max.zip").entries.size, 0xfffe);
  });
});
