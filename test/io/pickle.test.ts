/**
 * src/io/pickle.ts: the pickle VM under every .pt file. What Python's own pickle module writes
 * (protocols 2-5) is read back value for value; globals reach the caller's allow-list before
 * anything could be called; a truncated or malformed stream is an EplbFormatError naming the
 * file and the opcode's offset, and a pickle cannot make unbounded containers.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { EplbFormatError } from "../../src/io/errors.js";
import {
  forbiddenGlobal,
  MAX_PICKLE_CONTAINERS,
  PickleGlobal,
  type PickleHooks,
  unpickle,
  unpickleAt,
} from "../../src/io/pickle.js";
import { assertRefused } from "../helpers/refused.js";
import { PickleWriter } from "./support.js";

// Made by test/fixtures/io/make_pickles.py with Python's pickle module.
const fixture = (name: string) =>
  new Uint8Array(
    readFileSync(fileURLToPath(new URL(`../../../test/fixtures/io/${name}`, import.meta.url))),
  );

/** Hooks that allow nothing: plain data needs no global. */
const noGlobals: PickleHooks = {
  findGlobal: (m, n) => {
    throw new EplbFormatError("f.pkl", forbiddenGlobal(m, n));
  },
  call: () => {
    throw new Error("never called");
  },
};

const plain = {
  ints: [
    0,
    1,
    255,
    256,
    65535,
    65536,
    -1,
    -129,
    2 ** 31 - 1,
    -(2 ** 31),
    2 ** 40,
    -(2 ** 40),
    2 ** 53 - 1,
  ],
  big: [2n ** 70n, -(2n ** 64n), 2n ** 60n + 1n],
  floats: [0.25, -1.5e300, Number.POSITIVE_INFINITY],
  consts: [null, true, false],
  text: ["", "é", "日本", "x".repeat(300)],
  tuple: [1, [2, 3], []],
  shared: [[7], [7]],
  nested: { a: { b: [[]] } },
};
const full = {
  ...plain,
  bytes: [new Uint8Array([0, 1]), new Uint8Array(300)],
  set: [3],
  frozen: [4],
};

describe("unpickle: what Python's pickle writes", () => {
  for (const [name, expected] of [
    ["pickle-plain-p2.pkl", plain],
    ["pickle-plain-p3.pkl", plain],
    ["pickle-full-p4.pkl", full],
    ["pickle-full-p5.pkl", full],
  ] as const) {
    test(`${name}: every value, memo references shared`, () => {
      const v = unpickle(fixture(name), name, noGlobals) as typeof plain;
      assert.deepEqual(v, expected);
      assert.equal(v.shared[0], v.shared[1], "one list referenced twice stays one object");
    });
  }

  test("a GLOBAL goes to findGlobal, and REDUCE on it to call with a fillable dict", () => {
    const seen: string[] = [];
    const hooks: PickleHooks = {
      findGlobal: (m, n) => {
        seen.push(`${m}.${n}`);
        return new PickleGlobal(m, n);
      },
      call: (callable, args, newDict) => {
        assert.ok(callable instanceof PickleGlobal);
        assert.equal(callable.qualifiedName, "collections.OrderedDict");
        assert.deepEqual(args, []);
        return newDict();
      },
    };
    const v = unpickle(fixture("pickle-ordereddict-p2.pkl"), "od.pkl", hooks);
    assert.deepEqual(seen, ["collections.OrderedDict"]);
    assert.deepEqual(v, { b: 1, a: [2] });
    assert.deepEqual(Object.keys(v as object), ["b", "a"], "insertion order kept");
  });

  test("a refused global stops the pickle before any call", () => {
    let called = false;
    const w = new PickleWriter().proto(2).global("posix", "system").str("id").tupleN(1).reduce();
    assertRefused(
      () =>
        unpickle(w.stop().bytes(), "evil.pkl", {
          findGlobal: noGlobals.findGlobal,
          call: () => {
            called = true;
          },
        }),
      EplbFormatError,
      "f.pkl: forbidden pickle global posix.system: only tensors, storages and dicts are read, nothing is executed",
    );
    assert.equal(called, false);
  });

  test("unpickleAt reads pickles back to back and says where each ended", () => {
    const bytes = fixture("pickle-two-p2.pkl");
    const first = unpickleAt(bytes, "old.pt", noGlobals, 0);
    assert.equal(first.value, 7);
    const second = unpickleAt(bytes, "old.pt", noGlobals, first.end);
    assert.equal(second.value, "x");
    assert.equal(new TextDecoder().decode(bytes.subarray(second.end)), "raw");
  });
});

describe("unpickle: broken and hostile streams", () => {
  test("every truncation of a real pickle is an EplbFormatError naming the file", () => {
    const bytes = fixture("pickle-full-p4.pkl");
    for (let n = 0; n < bytes.length; n++) {
      assert.throws(
        () => unpickle(bytes.subarray(0, n), "cut.pkl", noGlobals),
        (e: unknown) =>
          e instanceof EplbFormatError && e.file === "cut.pkl" && !e.message.includes("\n"),
        `prefix of ${n} bytes`,
      );
    }
  });

  test("messages name the opcode's offset and the rule", () => {
    const refused = (ops: number[], message: string) =>
      assertRefused(
        () => unpickle(Uint8Array.from(ops), "m.pkl", noGlobals),
        EplbFormatError,
        message,
      );
    refused([0x80, 0x02], "m.pkl: truncated pickle: ended without a STOP opcode");
    refused(
      [0x80, 0x02, 0x69],
      "m.pkl: pickle opcode at offset 2: opcode INST (instantiates an arbitrary class) is not supported",
    );
    refused(
      [0x80, 0x02, 0xfe],
      "m.pkl: pickle opcode at offset 2: unknown opcode 0xfe (corrupt or not a pickle)",
    );
    refused(
      [0x80, 0x02, 0x4e, 0x51, 0x2e],
      "m.pkl: pickle opcode at offset 3: persistent ids are not allowed here",
    );
    refused(
      [0x80, 0x02, 0x63, ...new Array(201).fill(0x61), 0x0a, 0x61, 0x0a, 0x2e],
      "m.pkl: pickle opcode at offset 2: GLOBAL name longer than 200 bytes",
    );
  });

  test(`at most ${MAX_PICKLE_CONTAINERS} containers per pickle`, () => {
    const ops = (n: number) => {
      const b = new Uint8Array(2 + 2 * n + 2);
      b.set([0x80, 0x02]);
      for (let i = 0; i < n; i++) b.set([0x29, 0x30], 2 + 2 * i); // EMPTY_TUPLE, POP
      b.set([0x4e, 0x2e], 2 + 2 * n); // NONE, STOP
      return b;
    };
    // The offset pins the boundary: the first container over the limit is refused, not one before.
    assertRefused(
      () => unpickle(ops(MAX_PICKLE_CONTAINERS + 1), "many.pkl", noGlobals),
      EplbFormatError,
      `many.pkl: pickle opcode at offset ${2 + 2 * MAX_PICKLE_CONTAINERS}: more than 1048576 lists, tuples, dicts and objects`,
    );
  });
});

describe("forbiddenGlobal and PickleGlobal", () => {
  test("the message names the global, shown safely when it is not an identifier", () => {
    assert.equal(
      forbiddenGlobal("os", "system"),
      "forbidden pickle global os.system: only tensors, storages and dicts are read, nothing is executed",
    );
    assert.match(forbiddenGlobal("os\nx", "y"), /^forbidden pickle global "os\\nx\.y": /);
    assert.equal(new PickleGlobal("torch", "Size").qualifiedName, "torch.Size");
  });
});
