/**
 * src/io/zip.ts: the ZIP reader under every .pt and .npz. Archives torch and numpy write open
 * by their central directory (ZIP64 included) and read back checked; a truncated, lying or
 * hostile archive (overlapping entries, impossible ratios, bombs, bad CRCs) is one
 * EplbFormatError naming the file and what is wrong, before any large allocation.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import * as zlib from "node:zlib";
import { EplbFormatError } from "../../src/io/errors.js";
import {
  MAX_INFLATED_BYTES,
  maxInflatedBytes,
  openZip,
  type ZipArchive,
} from "../../src/io/zip.js";
import { writeStoredZip } from "../../src/io/zip-write.js";
import { assertRefused } from "../helpers/refused.js";
import { fixturesDir, torchBytes, zipBytes } from "./support.js";

const utf8 = (s: string) => new TextEncoder().encode(s);
const hasCrc32 = typeof (zlib as { crc32?: unknown }).crc32 === "function";

/** Opens and reads every entry, as the torch and npz readers do. */
function readAll(bytes: Uint8Array, file = "t.zip"): Map<string, Uint8Array> {
  const zip = openZip(bytes, file);
  return new Map([...zip.entries.values()].map((e) => [e.name, zip.read(e)]));
}
const refused = (fn: () => unknown, message: string | RegExp) =>
  assertRefused(fn, EplbFormatError, message);

/** A copy of `bytes` with a little-endian field overwritten. */
function patched(bytes: Uint8Array, at: number, value: number, width: 2 | 4): Uint8Array {
  const out = bytes.slice();
  const v = new DataView(out.buffer);
  if (width === 2) v.setUint16(at, value, true);
  else v.setUint32(at, value, true);
  return out;
}
const eocdAt = (bytes: Uint8Array) => bytes.length - 22;
const cdAt = (bytes: Uint8Array) =>
  new DataView(bytes.buffer, bytes.byteOffset).getUint32(eocdAt(bytes) + 16, true);

const two = () =>
  zipBytes([
    { name: "a", data: utf8("first") },
    { name: "b", data: utf8("second") },
  ]);

describe("openZip: archives real writers produce", () => {
  test("torch.save files (ZIP64 end records, data descriptors, 64-byte padding) open and read", () => {
    for (const name of ["sglang-init-p2l.pt", "sglang-stat-dump-int64.pt"]) {
      const bytes = readFileSync(join(fixturesDir(), name));
      const files = readAll(bytes, name);
      const names = [...files.keys()];
      assert.ok(
        names.some((n) => n.endsWith("/data.pkl")),
        names.join(),
      );
      const version = names.find((n) => n.endsWith("/version"))!;
      assert.match(new TextDecoder().decode(files.get(version)), /^3\s*$/);
    }
  });

  test("stored and deflated entries, a ZIP64-only end record, ZIP64 entry sizes", () => {
    const data = utf8("x".repeat(1000));
    for (const options of [{}, { zip64Only: true }, { zip64Entries: true }, { torchStyle: true }]) {
      const files = readAll(
        zipBytes(
          [
            { name: "s", data },
            { name: "d", data, method: 8 },
          ],
          options,
        ),
      );
      assert.deepEqual([...files.get("s")!], [...data], JSON.stringify(options));
      assert.deepEqual([...files.get("d")!], [...data], JSON.stringify(options));
    }
  });

  test("entries keep the directory's fields; a stored entry is a view, not a copy", () => {
    const bytes = writeStoredZip([{ name: "n/x", data: utf8("abc") }]);
    const zip = openZip(bytes, "t.zip");
    const e = zip.entries.get("n/x")!;
    assert.deepEqual(
      { method: e.method, size: e.size, compressedSize: e.compressedSize, flags: e.flags },
      { method: 0, size: 3, compressedSize: 3, flags: 0 },
    );
    assert.equal(zip.read(e).buffer, bytes.buffer);
  });

  test("a trailing archive comment is skipped to find the end record", () => {
    const bytes = two();
    const comment = utf8("made by hand");
    const withComment = new Uint8Array(bytes.length + comment.length);
    withComment.set(bytes);
    withComment.set(comment, bytes.length);
    new DataView(withComment.buffer).setUint16(eocdAt(bytes) + 20, comment.length, true);
    assert.deepEqual(readAll(withComment).get("b"), utf8("second"));
  });
});

describe("openZip: truncated and lying archives", () => {
  test("every truncation of a torch-style archive is an EplbFormatError, nothing else", () => {
    const bytes = torchBytes(utf8("\x80\x02}q\x00."), { "0": new Uint8Array(16).fill(3) });
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(
        () => readAll(bytes.subarray(0, n), "cut.pt"),
        (e: unknown) =>
          e instanceof EplbFormatError && e.file === "cut.pt" && !e.message.includes("\n"),
        `prefix of ${n} bytes`,
      );
    }
  });

  test("too short, or no end record", () => {
    refused(() => openZip(new Uint8Array(21), "f.zip"), "f.zip: not a zip archive: only 21 bytes");
    refused(
      () => openZip(new Uint8Array(100), "f.zip"),
      "f.zip: not a zip archive or truncated: no end of central directory",
    );
  });

  test("multi-disk archives are refused", () => {
    const bytes = two();
    refused(
      () => openZip(patched(bytes, eocdAt(bytes) + 4, 1, 2), "f.zip"),
      "f.zip: multi-disk zip archives are not supported",
    );
    refused(
      () => openZip(patched(bytes, eocdAt(bytes) + 8, 1, 2), "f.zip"),
      "f.zip: multi-disk zip archives are not supported",
    );
  });

  test("a directory past its end record, or too small for its entries", () => {
    const bytes = two();
    const cd = cdAt(bytes);
    refused(
      () => openZip(patched(bytes, eocdAt(bytes) + 16, cd + 1, 4), "f.zip"),
      `f.zip: zip central directory (offset ${cd + 1}, ${eocdAt(bytes) - cd} bytes) runs past its end record at ${eocdAt(bytes)}`,
    );
    const lying = patched(patched(bytes, eocdAt(bytes) + 8, 3, 2), eocdAt(bytes) + 10, 3, 2);
    refused(
      () => openZip(lying, "f.zip"),
      `f.zip: zip central directory claims 3 entries in ${eocdAt(bytes) - cd} bytes`,
    );
  });

  test("a bad directory signature names the entry and its offset", () => {
    const bytes = two();
    const cd = cdAt(bytes);
    refused(
      () => openZip(patched(bytes, cd, 0x12345678, 4), "f.zip"),
      `f.zip: zip central directory entry 0 at ${cd} has a bad signature`,
    );
  });

  test("ZIP64 markers without the ZIP64 records", () => {
    const bytes = two();
    refused(
      () => openZip(patched(bytes, eocdAt(bytes) + 10, 0xffff, 2), "f.zip"),
      "f.zip: zip64 end locator missing",
    );
    const cd = cdAt(bytes);
    refused(
      () => openZip(patched(bytes, cd + 24, 0xffffffff, 4), "f.zip"),
      'f.zip: zip entry "a" lacks its ZIP64 sizes',
    );
  });

  test("an entry running into the directory, two entries sharing bytes, a name twice", () => {
    const bytes = two();
    const cd = cdAt(bytes);
    refused(
      () => openZip(patched(bytes, cd + 20, 1000, 4), "f.zip"),
      'f.zip: zip entry "a" (1000 bytes at 0) overlaps the central directory',
    );
    // The second entry's directory record points at the first entry's header.
    const second = cd + 46 + 1;
    refused(
      () => openZip(patched(bytes, second + 42, 0, 4), "f.zip"),
      /^f\.zip: zip entries "[ab]" and "[ab]" overlap$/,
    );
    // The check counts the first entry's 30-byte header: "b" inside it overlaps too.
    refused(
      () => openZip(patched(bytes, second + 42, 20, 4), "f.zip"),
      'f.zip: zip entries "a" and "b" overlap',
    );
    refused(
      () =>
        openZip(
          zipBytes([
            { name: "a", data: utf8("1") },
            { name: "a", data: utf8("2") },
          ]),
          "f.zip",
        ),
      'f.zip: zip entry "a" appears twice: the archive is ambiguous',
    );
  });
});

describe("ZipArchive.read: what an entry may hold", () => {
  const entryOf = (zip: ZipArchive, name: string) => zip.entries.get(name)!;

  test("an entry larger than the caller's bound is refused before reading", () => {
    const zip = openZip(two(), "f.zip");
    refused(
      () => zip.read(entryOf(zip, "b"), 5),
      'f.zip: zip entry "b" declares 6 bytes, at most 5 expected',
    );
    assert.deepEqual(zip.read(entryOf(zip, "b"), 6), utf8("second"));
  });

  test("encrypted, other methods and bad local headers are refused", () => {
    const bytes = two();
    const cd = cdAt(bytes);
    const zipOf = (b: Uint8Array) => openZip(b, "f.zip");
    let zip = zipOf(patched(bytes, cd + 8, 1, 2));
    refused(() => zip.read(entryOf(zip, "a")), 'f.zip: zip entry "a" is encrypted');
    zip = zipOf(patched(bytes, cd + 10, 12, 2));
    refused(
      () => zip.read(entryOf(zip, "a")),
      'f.zip: zip entry "a" uses unsupported compression method 12',
    );
    zip = zipOf(patched(bytes, 0, 0, 4));
    refused(
      () => zip.read(entryOf(zip, "a")),
      'f.zip: zip entry "a" has a bad local header signature',
    );
    zip = zipOf(patched(bytes, cd + 24, 4, 4));
    refused(
      () => zip.read(entryOf(zip, "a")),
      'f.zip: zip entry "a" is stored but its sizes differ (5 vs 4)',
    );
  });

  test("deflate: an impossible ratio, corrupt data, a size the data does not have", () => {
    const data = utf8("y".repeat(2000));
    const bytes = zipBytes([{ name: "d", data, method: 8 }]);
    const cd = cdAt(bytes);
    const compressed = openZip(bytes, "f.zip").entries.get("d")!.compressedSize;
    let zip = openZip(patched(bytes, cd + 24, compressed * 1032 + 65, 4), "f.zip");
    refused(
      () => zip.read(entryOf(zip, "d")),
      `f.zip: zip entry "d" claims ${compressed * 1032 + 65} bytes from ${compressed} compressed: impossible`,
    );
    zip = openZip(patched(bytes, cd + 24, 1999, 4), "f.zip");
    refused(() => zip.read(entryOf(zip, "d")), /^f\.zip: zip entry "d": corrupt deflate data \(/);
    zip = openZip(patched(bytes, cd + 24, 2001, 4), "f.zip");
    refused(
      () => zip.read(entryOf(zip, "d")),
      'f.zip: zip entry "d" inflates to 2000 bytes, the directory says 2001',
    );
    const garbage = zipBytes([
      {
        name: "g",
        data,
        method: 8,
        deflated: { body: new Uint8Array([0xff, 0xff, 0xff]), size: 10 },
      },
    ]);
    zip = openZip(garbage, "f.zip");
    refused(() => zip.read(entryOf(zip, "g")), /^f\.zip: zip entry "g": corrupt deflate data \(/);
  });

  test("compressed entries share one inflation budget (decompression bombs)", () => {
    // A declared size over the budget is refused before anything is inflated.
    const one = zipBytes([
      {
        name: "d",
        data: utf8("z"),
        method: 8,
        deflated: { body: new Uint8Array(70000), size: MAX_INFLATED_BYTES + 1 },
      },
    ]);
    let zip = openZip(one, "bomb.zip");
    refused(
      () => zip.read(entryOf(zip, "d")),
      `bomb.zip: zip entry "d" would inflate to ${MAX_INFLATED_BYTES + 1} bytes, beyond the ${MAX_INFLATED_BYTES} bytes compressed entries may hold in all (decompression bomb?)`,
    );
    // Two entries of 40 MiB each: the first takes its share (then fails to inflate, cheaply),
    // the second no longer fits in what is left.
    const size = 40 * 1024 * 1024;
    const body = new Uint8Array(50000).fill(0xff);
    zip = openZip(
      zipBytes([
        { name: "p", data: utf8("z"), method: 8, deflated: { body, size } },
        { name: "q", data: utf8("z"), method: 8, deflated: { body, size } },
      ]),
      "two.zip",
    );
    refused(() => zip.read(entryOf(zip, "p")), /^two\.zip: zip entry "p": corrupt deflate data/);
    refused(
      () => zip.read(entryOf(zip, "q")),
      /^two\.zip: zip entry "q" would inflate to 41943040 bytes/,
    );
  });

  test("a CRC-32 mismatch is refused where this Node has zlib.crc32; a zero CRC is not checked", {
    skip: hasCrc32 ? false : "zlib.crc32 needs Node >= 20.15",
  }, () => {
    const bytes = two();
    const cd = cdAt(bytes);
    let zip = openZip(patched(bytes, cd + 16, 0xdeadbeef, 4), "f.zip");
    refused(() => zip.read(entryOf(zip, "a")), 'f.zip: zip entry "a" is corrupt: CRC-32 mismatch');
    zip = openZip(patched(bytes, cd + 16, 0, 4), "f.zip");
    assert.deepEqual(zip.read(entryOf(zip, "a")), utf8("first"));
  });
});

describe("maxInflatedBytes", () => {
  test("64 MiB, or 8 times the archive when that is more", () => {
    assert.equal(MAX_INFLATED_BYTES, 64 * 1024 * 1024);
    assert.equal(maxInflatedBytes(0), MAX_INFLATED_BYTES);
    assert.equal(maxInflatedBytes(8 * 1024 * 1024), MAX_INFLATED_BYTES);
    assert.equal(maxInflatedBytes(8 * 1024 * 1024 + 1), 8 * (8 * 1024 * 1024 + 1));
  });
});
