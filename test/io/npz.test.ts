/**
 * src/io/npz.ts: a NumPy .npz archive is read as numpy.load names its arrays, and an archive of
 * several arrays none of which says it holds loads is refused rather than guessed.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { encodeNpy } from "../../src/io/npy-write.js";
import { isNpzArchive, readNpz } from "../../src/io/npz.js";
import { isTensor } from "../../src/io/tensor.js";
import { openZip } from "../../src/io/zip.js";
import { writeStoredZip } from "../../src/io/zip-write.js";
import { assertRefused } from "../helpers/refused.js";

/** An .npz as numpy.savez writes it: one `<name>.npy` entry per array. */
function npz(arrays: Record<string, { values: number[]; shape: number[] }>): Uint8Array {
  return writeStoredZip(
    Object.entries(arrays).map(([name, a]) => ({
      name: `${name}.npy`,
      data: encodeNpy(a.values, a.shape, "int64"),
    })),
  );
}

const loads = { values: [1, 2, 3, 4, 5, 6], shape: [2, 3] };
const other = { values: [7], shape: [1] };

const refused = (fn: () => unknown, message: RegExp) => assertRefused(fn, EplbFormatError, message);

describe("readNpz", () => {
  test("one array alone (numpy.savez's arr_0) is that array", () => {
    const value = readNpz(npz({ arr_0: loads }), "loads.npz");
    assert.ok(isTensor(value));
    assert.deepEqual(value.shape, [2, 3]);
    assert.deepEqual(Array.from(value.data), loads.values);
  });

  test("a well-known name makes it a dict of every array, so the readers' names choose", () => {
    const value = readNpz(npz({ logical_count: loads, rank: other }), "d.npz");
    assert.ok(!isTensor(value) && typeof value === "object" && value !== null);
    assert.deepEqual(Object.keys(value), ["logical_count", "rank"]);
    const alone = readNpz(npz({ expert_load_window: loads }), "w.npz") as Record<string, unknown>;
    assert.ok(isTensor(alone.expert_load_window), "a known name alone stays in its dict");
  });

  test("several arrays with no known name are refused, naming them; --key chooses", () => {
    const bytes = npz({ a: loads, b: other });
    refused(
      () => readNpz(bytes, "two.npz"),
      /^two\.npz: holds 2 arrays \("a", "b"\): name the one with the loads with --key$/,
    );
    const value = readNpz(bytes, "two.npz", "b") as Record<string, unknown>;
    assert.deepEqual(Object.keys(value), ["a", "b"]);
  });

  test("an array named __proto__ stays data", () => {
    // A computed key: a literal `__proto__:` would set the prototype, not name an array.
    const value = readNpz(npz({ ["__proto__"]: loads, logical_count: other }), "p.npz");
    assert.ok(Object.hasOwn(value as object, "__proto__"));
    assert.equal(Object.getPrototypeOf(value), Object.prototype);
  });

  test("a zip that is not an .npz, or a broken member, is refused naming file and member", () => {
    const torchLike = writeStoredZip([{ name: "archive/data.pkl", data: new Uint8Array([0x80]) }]);
    refused(
      () => readNpz(torchLike, "x.npz"),
      /^x\.npz: is a zip archive but not a \.npz \(not every entry is \.npy\)$/,
    );
    const broken = writeStoredZip([{ name: "logical_count.npy", data: new Uint8Array(10) }]);
    refused(() => readNpz(broken, "b.npz"), /^b\.npz\["logical_count"\]: /);
  });
});

test("isNpzArchive: every entry .npy, and at least one", () => {
  assert.equal(isNpzArchive(openZip(npz({ a: loads }), "a.npz")), true);
  const mixed = writeStoredZip([
    { name: "a.npy", data: encodeNpy([1], [1], "int64") },
    { name: "version", data: new Uint8Array([0x33]) },
  ]);
  assert.equal(isNpzArchive(openZip(mixed, "m.zip")), false);
  assert.equal(isNpzArchive(openZip(writeStoredZip([]), "e.zip")), false);
});
