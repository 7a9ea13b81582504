import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EplbFormatError } from "../../src/io/errors.js";
import { loadsFromValue } from "../../src/io/load-values.js";
import { unpickle } from "../../src/io/pickle.js";
import { isTensor, type Tensor } from "../../src/io/tensor.js";
import { readTorch } from "../../src/io/torch.js";
import type { FileObject } from "../../src/io/value.js";
import { openZip } from "../../src/io/zip.js";
import {
  encode,
  PickleWriter,
  pickleTensor,
  torchBytes,
  torchDictOfTensor,
  zipBytes,
} from "./support.js";

const formatError = (pattern: RegExp) => (e: unknown) =>
  e instanceof EplbFormatError && pattern.test(e.message) && !e.message.includes("\n");

function tensorOf(bytes: Uint8Array, key = "t"): Tensor {
  const v = readTorch(bytes, "x.pt") as FileObject;
  const t = v[key];
  assert.ok(isTensor(t), `${key} is a tensor`);
  return t;
}

const iota = (n: number, f = (i: number) => i) => Array.from({ length: n }, (_, i) => f(i));

describe("torch tensors: views, dtypes, byte order", () => {
  test("contiguous view with a storage offset", () => {
    const storage = encode(
      "int64",
      iota(8, (i) => i * 100),
    );
    const t = tensorOf(
      torchDictOfTensor("t", "LongStorage", storage, 8, {
        offset: 2,
        size: [2, 3],
        stride: [3, 1],
      }),
    );
    assert.equal(t.dtype, "int64");
    assert.deepEqual(t.shape, [2, 3]);
    assert.deepEqual(Array.from(t.data), [200, 300, 400, 500, 600, 700]);
  });

  test("transposed (non-contiguous) view is materialised row-major", () => {
    const storage = encode("float32", [1, 2, 3, 4, 5, 6]);
    const t = tensorOf(
      torchDictOfTensor("t", "FloatStorage", storage, 6, {
        offset: 0,
        size: [3, 2],
        stride: [1, 3],
      }),
    );
    assert.deepEqual(Array.from(t.data), [1, 4, 2, 5, 3, 6]);
  });

  test("strided slice with offset, 3-D, and a stride-0 broadcast within the storage size", () => {
    const storage = encode("int32", iota(24));
    // x[:, 1:3, ::2] of a [2, 3, 4] tensor: offset 4, size [2, 2, 2], stride [12, 4, 2]
    const t = tensorOf(
      torchDictOfTensor("t", "IntStorage", storage, 24, {
        offset: 4,
        size: [2, 2, 2],
        stride: [12, 4, 2],
      }),
    );
    assert.deepEqual(Array.from(t.data), [4, 6, 8, 10, 16, 18, 20, 22]);
    const b = tensorOf(
      torchDictOfTensor("t", "IntStorage", storage, 24, {
        offset: 1,
        size: [3, 2],
        stride: [0, 1],
      }),
    );
    assert.deepEqual(Array.from(b.data), [1, 2, 1, 2, 1, 2]);
  });

  test("size-1 dimensions with arbitrary strides count as contiguous", () => {
    const storage = encode("int64", [7, 8, 9]);
    const t = tensorOf(
      torchDictOfTensor("t", "LongStorage", storage, 3, {
        offset: 0,
        size: [1, 3],
        stride: [99, 1],
      }),
    );
    assert.deepEqual(Array.from(t.data), [7, 8, 9]);
  });

  test("empty and 0-d tensors", () => {
    const storage = encode("float64", [2.5]);
    const e = tensorOf(
      torchDictOfTensor("t", "DoubleStorage", storage, 1, {
        offset: 0,
        size: [0, 4],
        stride: [4, 1],
      }),
    );
    assert.deepEqual(e.shape, [0, 4]);
    assert.equal(e.data.length, 0);
    const s = tensorOf(
      torchDictOfTensor("t", "DoubleStorage", storage, 1, { offset: 0, size: [], stride: [] }),
    );
    assert.deepEqual(Array.from(s.data), [2.5]);
  });

  const dtypes: [string, Parameters<typeof encode>[0], number[]][] = [
    ["LongStorage", "int64", [0, -1, 2 ** 53 - 1, 5]],
    ["IntStorage", "int32", [0, -1, 2147483647, 5]],
    ["ShortStorage", "int16", [0, -1, 32767, 5]],
    ["CharStorage", "int8", [0, -1, 127, 5]],
    ["ByteStorage", "uint8", [0, 1, 255, 5]],
    ["BoolStorage", "bool", [0, 1, 1, 0]],
    ["FloatStorage", "float32", [0, -1.5, 2 ** 60, 5]],
    ["DoubleStorage", "float64", [0, -1.5, 1e300, 0.1]],
    ["HalfStorage", "float16", [0, -1.5, 65504, 0.5]],
    ["BFloat16Storage", "bfloat16", [0, -1.5, 2 ** 100, 0.5]],
  ];
  for (const [cls, dtype, values] of dtypes) {
    for (const byteorder of [undefined, "little", "big"]) {
      test(`${cls} (${byteorder ?? "no byteorder entry"})`, () => {
        const storage = encode(dtype, values, byteorder !== "big");
        const bytes = torchDictOfTensor(
          "t",
          cls,
          storage,
          4,
          { offset: 0, size: [2, 2], stride: [2, 1] },
          { byteorder },
        );
        const t = tensorOf(bytes);
        assert.equal(t.dtype, dtype);
        assert.deepEqual(Array.from(t.data), values);
        // And through a non-contiguous view (the DataView path for big-endian).
        const tt = tensorOf(
          torchDictOfTensor(
            "t",
            cls,
            storage,
            4,
            { offset: 0, size: [2, 2], stride: [1, 2] },
            { byteorder },
          ),
        );
        assert.deepEqual(Array.from(tt.data), [values[0], values[2], values[1], values[3]]);
      });
    }
  }

  test("torch.storage.UntypedStorage reads bytes", () => {
    const t = tensorOf(
      torchDictOfTensor("t", "UntypedStorage", new Uint8Array([1, 2, 3]), 3, {
        offset: 0,
        size: [3],
        stride: [1],
      }),
    );
    assert.deepEqual(Array.from(t.data), [1, 2, 3]);
  });

  test("int64 beyond 2^53 in a storage is refused", () => {
    const storage = new Uint8Array(8);
    new DataView(storage.buffer).setBigInt64(0, 2n ** 62n, true);
    assert.throws(
      () =>
        readTorch(
          torchDictOfTensor("t", "LongStorage", storage, 1, { offset: 0, size: [1], stride: [1] }),
          "x.pt",
        ),
      formatError(/beyond \+-2\^53/),
    );
  });
});

describe("torch archives: zip layouts", () => {
  const storage = encode("int64", [1, 2, 3, 4]);
  const pickle = (() => {
    const w = new PickleWriter().proto(2).emptyDict().str("t");
    pickleTensor(w, {
      storageClass: "LongStorage",
      key: "0",
      numel: 4,
      offset: 0,
      size: [4],
      stride: [1],
    });
    return w.setitem().stop().bytes();
  })();

  test("deflated entries and a plain (non-torch) zip writer", () => {
    const t = tensorOf(torchBytes(pickle, { "0": storage }, { deflate: true }));
    assert.deepEqual(Array.from(t.data), [1, 2, 3, 4]);
  });

  test("ZIP64 end records only, and ZIP64 sizes in the central directory", () => {
    assert.deepEqual(
      Array.from(tensorOf(torchBytes(pickle, { "0": storage }, { zip64Only: true })).data),
      [1, 2, 3, 4],
    );
    const z = zipBytes(
      [
        { name: "a/data.pkl", data: pickle },
        { name: "a/data/0", data: storage },
      ],
      { zip64Entries: true },
    );
    assert.deepEqual(Array.from(tensorOf(z).data), [1, 2, 3, 4]);
  });

  test("archive name is whatever torch used; a trailing comment is fine", () => {
    const z = torchBytes(pickle, { "0": storage }, { name: "my model.v2" });
    assert.deepEqual(Array.from(tensorOf(z).data), [1, 2, 3, 4]);
  });

  test("a corrupted storage byte fails the CRC check", () => {
    const z = torchBytes(pickle, { "0": storage });
    const at = findBytes(z, storage);
    const bad = z.slice();
    bad[at + 3] ^= 0x40;
    assert.throws(() => readTorch(bad, "x.pt"), formatError(/CRC-32 mismatch/));
  });

  test("structural zip errors", () => {
    const z = torchBytes(pickle, { "0": storage }, { deflate: true });
    assert.throws(() => readTorch(z.subarray(0, 10), "x.pt"), formatError(/only 10 bytes/));
    assert.throws(
      () => readTorch(z.subarray(0, z.length - 30), "x.pt"),
      formatError(/no end of central directory/),
    );
    const noPkl = zipBytes([{ name: "x/other", data: storage }]);
    assert.throws(() => readTorch(noPkl, "x.pt"), formatError(/no <name>\/data\.pkl/));
    const script = zipBytes([{ name: "m/constants.pkl", data: pickle }]);
    assert.throws(() => readTorch(script, "x.pt"), formatError(/TorchScript/));
    const encrypted = z.slice();
    // Set the encryption bit in the first central directory entry's flags.
    const cd = findBytes(encrypted, new Uint8Array([0x50, 0x4b, 0x01, 0x02]));
    encrypted[cd + 8] |= 1;
    assert.throws(() => readTorch(encrypted, "x.pt"), formatError(/encrypted/));
    const method = z.slice();
    method[cd + 10] = 12;
    assert.throws(() => readTorch(method, "x.pt"), formatError(/compression method 12/));
  });

  test("a zip bomb claim is refused before inflating", () => {
    const z = torchBytes(pickle, { "0": storage }, { deflate: true });
    const cd = findBytes(z, new Uint8Array([0x50, 0x4b, 0x01, 0x02]));
    const bomb = z.slice();
    new DataView(bomb.buffer).setUint32(cd + 24, 0x7fffffff, true);
    assert.throws(
      () => readTorch(bomb, "x.pt"),
      formatError(/impossible|decompression bomb|at most \d+ expected/),
    );
  });

  test("overlapping entries are refused (one compressed blob inflated under many names)", () => {
    const z = torchBytes(pickle, { "0": storage, "1": storage });
    // Point the central entry of data/1 at data/0's local header.
    const first = findBytes(z, new TextEncoder().encode("archive/data/0"));
    const local0 = first - 30;
    const bad = z.slice();
    const view = new DataView(bad.buffer);
    let at = -1;
    for (;;) {
      at = findBytes(bad, new Uint8Array([0x50, 0x4b, 0x01, 0x02]), at + 1);
      const nameLen = view.getUint16(at + 28, true);
      const name = new TextDecoder().decode(bad.subarray(at + 46, at + 46 + nameLen));
      if (name !== "archive/data/1") continue;
      view.setUint32(at + 42, local0, true);
      break;
    }
    assert.throws(() => readTorch(bad, "x.pt"), formatError(/overlap/));
  });

  test("legacy torch.save format gets a clear message", () => {
    const legacy = new Uint8Array([
      0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19,
    ]);
    assert.throws(() => readTorch(legacy, "old.pt"), formatError(/legacy/));
  });

  test("openZip lists entries and reads stored ones without copying", () => {
    const z = zipBytes([{ name: "a.txt", data: new TextEncoder().encode("hello") }]);
    const zip = openZip(z, "z.zip");
    const e = zip.entries.get("a.txt")!;
    assert.equal(new TextDecoder().decode(zip.read(e)), "hello");
    assert.equal(zip.read(e).buffer, z.buffer);
  });
});

describe("pickle VM", () => {
  test("protocol 4 forms: FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE, nested containers", () => {
    const w = new PickleWriter().proto(4).op(0x95, 0, 0, 0, 0, 0, 0, 0, 0);
    // FRAME length 0 is allowed (advisory); the rest follows unframed.
    w.emptyDict().memoize();
    w.mark();
    w.str("list", true)
      .emptyList()
      .memoize()
      .mark()
      .int(1)
      .int(-5)
      .int(70000)
      .long(2n ** 40n)
      .float(0.25)
      .appends();
    w.str("tuple", true).mark().str("a", true).none().bool(true).tuple();
    w.str("nested", true).emptyDict().str("x", true).get(1).setitem();
    w.str("big", true).long(2n ** 70n);
    w.str("neg", true).long(-(2n ** 60n));
    w.str("od", true)
      .stackGlobal("collections", "OrderedDict")
      .emptyTuple()
      .reduce()
      .str("k", true)
      .int(3)
      .setitem();
    w.str("bytes", true).op(0x43, 2, 9, 8);
    w.str("size", true)
      .stackGlobal("torch", "Size")
      .mark()
      .int(4)
      .int(16)
      .tuple()
      .tupleN(1)
      .reduce();
    w.setitems().stop();
    const v = readTorch(torchBytes(w.bytes(), {}), "p4.pt") as FileObject;
    assert.deepEqual(v.list, [1, -5, 70000, 2 ** 40, 0.25]);
    assert.deepEqual(v.tuple, ["a", null, true]);
    assert.equal((v.nested as FileObject).x, v.list, "memo shares the object");
    assert.equal(v.big, 2n ** 70n);
    assert.equal(v.neg, -(2n ** 60n));
    assert.deepEqual(v.od, { k: 3 });
    assert.deepEqual(v.bytes, new Uint8Array([9, 8]));
    assert.deepEqual(v.size, [4, 16]);
  });

  test("a list of per-layer tensors stacks into loads", () => {
    const w = new PickleWriter().proto(2).emptyDict().str("logical_count").emptyList().mark();
    pickleTensor(w, {
      storageClass: "LongStorage",
      key: "0",
      numel: 6,
      offset: 0,
      size: [3],
      stride: [1],
    });
    pickleTensor(w, {
      storageClass: "LongStorage",
      key: "0",
      numel: 6,
      offset: 3,
      size: [3],
      stride: [1],
    });
    w.appends().setitem().stop();
    const v = readTorch(
      torchBytes(w.bytes(), { "0": encode("int64", [1, 2, 3, 4, 5, 6]) }),
      "l.pt",
    );
    const m = loadsFromValue(v, "l.pt", { limit: 1000 });
    assert.deepEqual([m.layers, m.experts, ...m.data], [2, 3, 1, 2, 3, 4, 5, 6]);
  });

  test("a __proto__ key is plain data", () => {
    const w = new PickleWriter()
      .proto(2)
      .emptyDict()
      .str("__proto__")
      .emptyDict()
      .str("polluted")
      .int(1)
      .setitem()
      .setitem()
      .stop();
    const v = readTorch(torchBytes(w.bytes(), {}), "p.pt") as Record<string, unknown>;
    assert.ok(Object.hasOwn(v, "__proto__"));
    assert.equal(Object.getPrototypeOf(v), Object.prototype);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test("cycles and shared sub-lists do not hang the readers", () => {
    // l = []; l.append(l)
    const cyc = new PickleWriter().proto(2).emptyList().put(0).get(0).append().stop();
    const v = readTorch(torchBytes(cyc.bytes(), {}), "c.pt");
    assert.throws(
      () => loadsFromValue(v, "c.pt", { limit: 100 }),
      formatError(/deeper than|not a number|nested/),
    );
    // 40 levels of [x, x] describe 2^40 numbers in a few hundred bytes.
    const dag = new PickleWriter().proto(2).int(1);
    for (let i = 0; i < 40; i++) dag.put(0).get(0).tupleN(2);
    dag.stop();
    const d = readTorch(torchBytes(dag.bytes(), {}), "d.pt");
    assert.throws(
      () => loadsFromValue(d, "d.pt", { limit: 1000 }),
      formatError(/nested deeper|more than the file/),
    );
    // [[[]] * 1e6] * 1e6 style: zero elements but astronomically many lists.
    const wide = new PickleWriter().proto(2).emptyList().put(0).op(0x30);
    wide.emptyList().mark();
    for (let i = 0; i < 2000; i++) wide.get(0);
    wide.appends().put(1).op(0x30).emptyList().mark();
    for (let i = 0; i < 2000; i++) wide.get(1);
    wide.appends().stop();
    const wv = readTorch(torchBytes(wide.bytes(), {}), "w.pt");
    assert.throws(
      () => loadsFromValue(wv, "w.pt", { limit: 3000 }),
      formatError(/nested lists|more than/),
    );
  });

  test("rebuilding a big storage many times is bounded", () => {
    const w = new PickleWriter().proto(2).emptyList().mark();
    pickleTensor(w, {
      storageClass: "ByteStorage",
      key: "0",
      numel: 4096,
      offset: 0,
      size: [4096],
      stride: [1],
    });
    w.put(5);
    for (let i = 0; i < 100; i++) {
      w.global("torch._utils", "_rebuild_tensor_v2").mark();
      w.mark()
        .str("storage")
        .global("torch", "ByteStorage")
        .str("0")
        .str("cpu")
        .int(4096)
        .tuple()
        .persid();
      w.int(0).ints([4096]).ints([1]).bool(false).emptyDict().tuple().reduce();
    }
    w.appends().stop();
    assert.throws(
      () => readTorch(torchBytes(w.bytes(), { "0": new Uint8Array(4096) }), "amp.pt"),
      formatError(/more tensor elements than the archive holds/),
    );
  });
});

describe("hostile pickles", () => {
  const forbidden: [string, string][] = [
    ["posix", "system"],
    ["os", "system"],
    ["builtins", "eval"],
    ["builtins", "exec"],
    ["__builtin__", "eval"],
    ["subprocess", "Popen"],
    ["torch", "load"],
    ["torch._utils", "_rebuild_device_tensor_from_numpy"],
    ["numpy.core.multiarray", "_reconstruct"],
    ["collections", "defaultdict"],
    ["torch", "constructor"],
    ["torch", "toString"],
    ["torch", "__proto__"],
    ["torch.storage", "hasOwnProperty"],
  ];
  for (const [module, name] of forbidden) {
    test(`GLOBAL ${module}.${name} + REDUCE is refused by name`, () => {
      const w = new PickleWriter()
        .proto(2)
        .global(module, name)
        .mark()
        .str("touch /tmp/pwned")
        .tuple()
        .reduce()
        .stop();
      assert.throws(
        () => readTorch(torchBytes(w.bytes(), {}), "evil.pt"),
        formatError(
          new RegExp(`forbidden pickle global ${module.replace(/\./g, "\\.")}\\.${name}`),
        ),
      );
      const s = new PickleWriter()
        .proto(4)
        .stackGlobal(module, name)
        .mark()
        .str("x")
        .tuple()
        .reduce()
        .stop();
      assert.throws(
        () => readTorch(torchBytes(s.bytes(), {}), "evil.pt"),
        formatError(/forbidden pickle global/),
      );
    });
  }

  test("the global is refused when named, before any call: hooks are never asked to call", () => {
    let calls = 0;
    const w = new PickleWriter()
      .proto(2)
      .global("posix", "system")
      .mark()
      .str("id")
      .tuple()
      .reduce()
      .stop();
    assert.throws(
      () =>
        unpickle(w.bytes(), "evil.pkl", {
          findGlobal: (m, n) => {
            throw new EplbFormatError("evil.pkl", `forbidden pickle global ${m}.${n}`);
          },
          call: () => {
            calls++;
            return null;
          },
        }),
      formatError(/posix\.system/),
    );
    assert.equal(calls, 0);
  });

  test("a global name with newlines or junk is quoted on one line", () => {
    const w = new PickleWriter().proto(4).stackGlobal("os\nsystem", "x\u0000y").reduce().stop();
    assert.throws(
      () => readTorch(torchBytes(w.bytes(), {}), "evil.pt"),
      formatError(/forbidden pickle global "os\\nsystem\.x\\u0000y"/),
    );
  });

  test("class-instantiating and extension opcodes are refused", () => {
    for (const [op, name] of [
      [0x69, "INST"],
      [0x6f, "OBJ"],
      [0x82, "EXT1"],
      [0x97, "NEXT_BUFFER"],
    ] as const) {
      const w = new PickleWriter().proto(2).mark().op(op, 1, 0x0a, 0x0a).stop();
      assert.throws(
        () => readTorch(torchBytes(w.bytes(), {}), "evil.pt"),
        formatError(new RegExp(name)),
      );
    }
  });

  test("allowed globals used wrongly are refused", () => {
    const cases: [PickleWriter, RegExp][] = [
      [
        new PickleWriter().proto(2).global("torch", "LongStorage").emptyTuple().reduce().stop(),
        /cannot be called/,
      ],
      [new PickleWriter().proto(2).int(3).emptyTuple().reduce().stop(), /not an allowed function/],
      [
        new PickleWriter()
          .proto(2)
          .global("collections", "OrderedDict")
          .mark()
          .emptyList()
          .tuple()
          .reduce()
          .stop(),
        /with arguments/,
      ],
      [
        new PickleWriter().proto(2).global("torch", "LongStorage").stop(),
        /holds the class torch\.LongStorage/,
      ],
      [
        new PickleWriter()
          .proto(2)
          .emptyDict()
          .emptyDict()
          .str("a")
          .int(1)
          .setitem()
          .build()
          .stop(),
        /BUILD with object state/,
      ],
      [new PickleWriter().proto(2).mark().str("storage").tuple().persid().stop(), /persistent id/],
      [
        new PickleWriter()
          .proto(2)
          .mark()
          .str("storage")
          .global("torch", "LongStorage")
          .str("9")
          .str("cpu")
          .int(1)
          .tuple()
          .persid()
          .stop(),
        /storage "9" is missing/,
      ],
      [
        new PickleWriter()
          .proto(2)
          .mark()
          .str("storage")
          .global("torch", "LongStorage")
          .str("0")
          .str("cpu")
          .int(1)
          .tuple()
          .persid()
          .stop(),
        /bare storage/,
      ],
      [
        new PickleWriter()
          .proto(2)
          .global("torch._utils", "_rebuild_tensor_v2")
          .mark()
          .int(1)
          .int(0)
          .ints([1])
          .ints([1])
          .tuple()
          .reduce()
          .stop(),
        /without a storage/,
      ],
    ];
    for (const [w, pattern] of cases) {
      assert.throws(
        () => readTorch(torchBytes(w.bytes(), { "0": new Uint8Array(8) }), "bad.pt"),
        formatError(pattern),
      );
    }
  });

  test("tensor views that lie about their storage", () => {
    const storage = encode("int64", [1, 2, 3, 4]);
    const view = (offset: number, size: number[], stride: number[]) =>
      torchDictOfTensor("t", "LongStorage", storage, 4, { offset, size, stride });
    assert.throws(
      () => readTorch(view(2, [3], [1]), "v.pt"),
      formatError(/reads past its storage/),
    );
    assert.throws(
      () => readTorch(view(0, [2, 2], [3, 1]), "v.pt"),
      formatError(/reads past its storage/),
    );
    assert.throws(
      () => readTorch(view(0, [1000000], [0]), "v.pt"),
      formatError(/more than the file can hold/),
    );
    assert.throws(
      () => readTorch(view(0, [2, 2], [1]), "v.pt"),
      formatError(/stride does not match/),
    );
    assert.throws(() => readTorch(view(0, [2], [-1]), "v.pt"), formatError(/invalid entry -1/));
    assert.throws(() => readTorch(view(-1, [2], [1]), "v.pt"), formatError(/storage offset/));
    const shortStorage = torchDictOfTensor("t", "LongStorage", storage, 5, {
      offset: 0,
      size: [4],
      stride: [1],
    });
    assert.throws(
      () => readTorch(shortStorage, "v.pt"),
      formatError(/holds 32 bytes, 5 int64 need 40/),
    );
  });

  test("malformed pickle streams", () => {
    const cases: [number[], RegExp][] = [
      [[0x80, 0x02], /without a STOP/],
      [[0x80, 0x09, 0x4e, 0x2e], /protocol 9/],
      [[0x80, 0x02, 0x2e], /STOP with 0 values/],
      [[0x80, 0x02, 0x4e, 0x4e, 0x2e], /STOP with 2 values/],
      [[0x80, 0x02, 0x61, 0x2e], /stack underflow/],
      [[0x80, 0x02, 0x4e, 0x4e, 0x61, 0x2e], /APPEND on something that is not a list/],
      [[0x80, 0x02, 0x5d, 0x4e, 0x4e, 0x73, 0x2e], /SETITEM on something that is not a dict/],
      [[0x80, 0x02, 0x68, 0x07, 0x2e], /memo entry 7 is not defined/],
      [[0x80, 0x02, 0x74, 0x2e], /no MARK/],
      [[0x80, 0x02, 0x28, 0x4e, 0x2e], /open MARK/],
      [[0x80, 0x02, 0x58, 0xff, 0xff, 0xff, 0x7f, 0x41], /truncated pickle/],
      [[0x80, 0x02, 0x63, 0x6f, 0x73], /truncated GLOBAL/],
      [[0x80, 0x02, 0xff], /unknown opcode 0xff/],
      [[0x80, 0x02, 0x49, 0x31, 0x0a, 0x2e], /INT \(protocol 0 text\)/],
      [[0x80, 0x04, 0x95, 0xff, 0xff, 0, 0, 0, 0, 0, 0], /FRAME of 65535 bytes/],
      [[0x80, 0x02, 0x8b, 0xff, 0xff, 0xff, 0xff], /negative length/],
      [[0x80, 0x02, 0x28, 0x4e, 0x64, 0x2e], /odd number/],
      [[0x80, 0x02, 0x7d, 0x5d, 0x4e, 0x73, 0x2e], /dict key/],
    ];
    for (const [ops, pattern] of cases) {
      assert.throws(
        () => readTorch(torchBytes(Uint8Array.from(ops), {}), "m.pt"),
        formatError(pattern),
        pattern.source,
      );
    }
  });
});

function findBytes(haystack: Uint8Array, needle: Uint8Array, from = 0): number {
  outer: for (let i = Math.max(0, from); i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  throw new Error("not found");
}
