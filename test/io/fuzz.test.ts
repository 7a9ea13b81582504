/**
 * Fuzzing every reader with a fixed seed: random files, bit flips, truncations, splices and
 * insertions of real files, mutated pickles re-wrapped in valid archives (so the CRC does not
 * hide the VM), and random opcode programs. Every outcome must be a value or an
 * EplbFormatError with a one-line message; anything else fails with the input to reproduce it.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readCsv } from "../../src/io/csv.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { placementFromValue } from "../../src/io/interpret.js";
import { readJson } from "../../src/io/json.js";
import { classifyValue, loadsFromValue, traceFromValue } from "../../src/io/load-values.js";
import { readNpy } from "../../src/io/npy.js";
import { detectFormat } from "../../src/io/read.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { readTorch } from "../../src/io/torch.js";
import type { FileObject, FileValue } from "../../src/io/value.js";
import { readYaml } from "../../src/io/yaml.js";
import { openZip } from "../../src/io/zip.js";
import { bombFiles, csvLongLine, ptAuxiliaryBomb, ptDeflateBomb, ptHugeShape } from "./bombs.js";
import {
  encode,
  FIXTURES,
  fixturesDir,
  npyBytes,
  PickleWriter,
  Prng,
  pickleTensor,
  safetensorsBytes,
  torchBytes,
  torchDictOfTensor,
} from "./support.js";

const SEED = 20261129;
const rng = new Prng(SEED);
const text = (s: string) => new TextEncoder().encode(s);

type Reader = (bytes: Uint8Array) => FileValue;
const READERS: [string, Reader][] = [
  ["pt", (b) => readTorch(b, "f")],
  ["npy", (b) => readNpy(b, "f")],
  ["safetensors", (b) => Object.fromEntries(readSafetensors(b, "f")) as FileObject],
  ["json", (b) => readJson(b, "f")],
  ["csv", (b) => readCsv(b, "f")],
  ["yaml", (b) => readYaml(b, "f")],
];
const BY_NAME = new Map(READERS);

const stats = { inputs: 0, calls: 0, values: 0, formatErrors: 0 };

/** Runs `fn`; a value or an EplbFormatError is fine, anything else fails with the input. */
function expectSafe(label: string, input: Uint8Array, fn: () => unknown): boolean {
  stats.calls++;
  try {
    fn();
    stats.values++;
    return true;
  } catch (error) {
    if (error instanceof EplbFormatError && !error.message.includes("\n")) {
      stats.formatErrors++;
      return false;
    }
    assert.fail(
      `${label} threw ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}\n` +
        `input (base64): ${Buffer.from(input).toString("base64").slice(0, 4000)}`,
    );
  }
}

/** Every reader (forced), then the auto-detected one, then every interpretation of its value. */
function fuzzOne(label: string, input: Uint8Array, only?: string[]): void {
  stats.inputs++;
  for (const [name, read] of READERS) {
    if (only && !only.includes(name)) continue;
    expectSafe(`${label} as ${name}`, input, () => read(input));
  }
  let value: FileValue = null;
  const read = BY_NAME.get(detectFormat(input, "f"))!;
  if (!expectSafe(`${label} auto`, input, () => (value = read(input)))) return;
  const limit = Math.max(1, input.length);
  expectSafe(`${label} loads`, input, () => loadsFromValue(value, "f", { limit }));
  expectSafe(`${label} trace`, input, () => traceFromValue(value, "f", { limit, steps: "-1:" }));
  expectSafe(`${label} placement`, input, () => placementFromValue(value, "f", { limit }));
  expectSafe(`${label} classify`, input, () => classifyValue(value, "f", { limit }));
}

// ---------------------------------------------------------------------------------------------
// Seeds

const dir = fixturesDir();
const fixtureSeeds = FIXTURES.map((name) => ({
  name,
  bytes: new Uint8Array(readFileSync(join(dir, name))),
}));

function handSeeds(): { name: string; bytes: Uint8Array }[] {
  const v = Array.from({ length: 24 }, (_, i) => (i * 37) % 11);
  const pickleList = new PickleWriter()
    .proto(2)
    .emptyDict()
    .str("logical_count")
    .emptyList()
    .mark();
  pickleTensor(pickleList, {
    storageClass: "IntStorage",
    key: "0",
    numel: 6,
    offset: 0,
    size: [3],
    stride: [1],
  });
  pickleTensor(pickleList, {
    storageClass: "IntStorage",
    key: "0",
    numel: 6,
    offset: 3,
    size: [3],
    stride: [1],
  });
  pickleList.appends().setitem().stop();
  return [
    { name: "npy-v2-big", bytes: npyBytes(">i8", [2, 3, 4], v, { version: 2 }) },
    { name: "npy-v3-fortran", bytes: npyBytes("<f4", [2, 3, 4], v, { version: 3, fortran: true }) },
    { name: "npy-f2", bytes: npyBytes("<f2", [4, 6], v) },
    {
      name: "safetensors",
      bytes: safetensorsBytes([
        { name: "a", dtype: "BF16", shape: [2, 3], data: encode("bfloat16", [1, 2, 3, 4, 5, 6]) },
        {
          name: "logical_count",
          dtype: "I64",
          shape: [2, 2, 2],
          data: encode("int64", [1, 2, 3, 4, 5, 6, 7, 8]),
        },
      ]),
    },
    {
      name: "pt-strided-big-endian",
      bytes: torchDictOfTensor(
        "weight",
        "ShortStorage",
        encode("int16", v, false),
        24,
        { offset: 1, size: [3, 2, 2], stride: [8, 1, 3] },
        { byteorder: "big" },
      ),
    },
    {
      name: "pt-deflate",
      bytes: torchDictOfTensor(
        "phy2log",
        "LongStorage",
        encode("int64", [0, 1, 2, 0, 2, 1]),
        6,
        { offset: 0, size: [2, 3], stride: [3, 1] },
        { deflate: true },
      ),
    },
    {
      name: "pt-list",
      bytes: torchBytes(pickleList.bytes(), { "0": encode("int32", [1, 2, 3, 4, 5, 6]) }),
    },
    { name: "json-p2l", bytes: text('{"physical_to_logical_map": [[0, 1, 2, 0], [2, 1, 0, 1]]}') },
    { name: "json-shape", bytes: text('{"shape": [2, 2, 2], "counts": [1, 2, 3, 4, 5, 6, 7, 8]}') },
    {
      name: "vllm-ascend",
      bytes: text(
        '{"moe_layer_count": 1, "layer_list": [{"layer_id": 0, "device_count": 2, "device_list": [{"device_id": 0, "device_expert": [2, 0]}, {"device_id": 1, "device_expert": [1, 0]}]}]}',
      ),
    },
    { name: "csv", bytes: text("e0,e1,e2\n1,2,3\n4,5,6\n\n7,8,9\n") },
    {
      name: "yaml",
      bytes: text(
        "num_slots: 3\nlayer_updates_per_iter: 0\ninitial_global_assignments:\n  0: [0, 1, 0]\n  1:\n  - 1\n  - 0\n  - 1\n  2: [1,\n    0, 1]\n",
      ),
    },
  ];
}

const seeds = [...fixtureSeeds, ...handSeeds()];

// ---------------------------------------------------------------------------------------------
// Mutators

const INTERESTING = [
  0x00, 0xff, 0x7f, 0x80, 0x01, 0x0a, 0x28, 0x2e, 0x5b, 0x7b, 0x22, 0x27, 0x2c, 0x3a, 0x2d,
];

function mutate(src: Uint8Array): Uint8Array {
  const b = src.slice();
  const kind = rng.int(7);
  switch (kind) {
    case 0: {
      // bit flips
      const n = 1 + rng.int(8);
      for (let i = 0; i < n && b.length > 0; i++) b[rng.int(b.length)] ^= 1 << rng.int(8);
      return b;
    }
    case 1: {
      // interesting bytes
      const n = 1 + rng.int(4);
      for (let i = 0; i < n && b.length > 0; i++)
        b[rng.int(b.length)] = INTERESTING[rng.int(INTERESTING.length)];
      return b;
    }
    case 2:
      return b.subarray(0, rng.int(b.length + 1));
    case 3: {
      // splice with another seed
      const other = seeds[rng.int(seeds.length)].bytes;
      const cut = rng.int(b.length + 1);
      const from = rng.int(other.length + 1);
      const out = new Uint8Array(cut + other.length - from);
      out.set(b.subarray(0, cut));
      out.set(other.subarray(from), cut);
      return out;
    }
    case 4: {
      // insert random bytes
      const at = rng.int(b.length + 1);
      const n = 1 + rng.int(16);
      const out = new Uint8Array(b.length + n);
      out.set(b.subarray(0, at));
      for (let i = 0; i < n; i++) out[at + i] = rng.int(256);
      out.set(b.subarray(at), at + n);
      return out;
    }
    case 5: {
      // overwrite a 32-bit field with a boundary value (sizes, offsets, counts)
      if (b.length < 4) return b;
      const at = rng.int(b.length - 3);
      const values = [0, 1, 0x7fffffff, 0xffffffff, 0x80000000, 0xffff, b.length, b.length + 1];
      new DataView(b.buffer, b.byteOffset).setUint32(at, values[rng.int(values.length)], true);
      return b;
    }
    default: {
      // duplicate a chunk
      if (b.length === 0) return b;
      const at = rng.int(b.length);
      const len = 1 + rng.int(Math.min(64, b.length - at));
      const out = new Uint8Array(b.length + len);
      out.set(b.subarray(0, at + len));
      out.set(b.subarray(at, at + len), at + len);
      out.set(b.subarray(at + len), at + 2 * len);
      return out;
    }
  }
}

/** The pickle and storages of a torch archive, to mutate the pickle and re-wrap it validly. */
function unpackTorch(bytes: Uint8Array): {
  pickle: Uint8Array;
  storages: Record<string, Uint8Array>;
} {
  const zip = openZip(bytes, "seed");
  let pickle = new Uint8Array(0);
  const storages: Record<string, Uint8Array> = {};
  for (const [name, entry] of zip.entries) {
    if (name.endsWith("/data.pkl")) pickle = zip.read(entry).slice();
    const m = /\/data\/([^/]+)$/.exec(name);
    if (m) storages[m[1]] = zip.read(entry).slice();
  }
  return { pickle, storages };
}

/** A random program of plausible opcodes with small random arguments. */
function randomPickle(): Uint8Array {
  const w = new PickleWriter().proto(2 + rng.int(4));
  const n = 1 + rng.int(40);
  const gens: (() => void)[] = [
    () => w.mark(),
    () => w.emptyDict(),
    () => w.emptyList(),
    () => w.emptyTuple(),
    () => w.tuple(),
    () => w.tupleN((1 + rng.int(3)) as 1 | 2 | 3),
    () => w.int(rng.int(70000) - 5),
    () => w.long(BigInt(rng.int(1 << 30)) << BigInt(rng.int(40))),
    () => w.float(rng.next() * 100),
    () =>
      w.str(
        ["storage", "cpu", "0", "logical_count", "phy2log", "weight"][rng.int(6)],
        rng.next() < 0.5,
      ),
    () => w.none(),
    () => w.bool(rng.next() < 0.5),
    () => w.setitem(),
    () => w.setitems(),
    () => w.append(),
    () => w.appends(),
    () => w.reduce(),
    () => w.build(),
    () => w.persid(),
    () => w.put(rng.int(4)),
    () => w.get(rng.int(4)),
    () => w.memoize(),
    () => w.op(0x30),
    () => w.op(0x31),
    () => w.op(0x32),
    () => w.global("torch._utils", "_rebuild_tensor_v2"),
    () => w.global("torch", ["LongStorage", "IntStorage", "HalfStorage", "Size"][rng.int(4)]),
    () => w.global("collections", "OrderedDict"),
    () =>
      w.stackGlobal(
        ["posix", "builtins", "torch"][rng.int(3)],
        ["system", "eval", "LongStorage"][rng.int(3)],
      ),
    () => w.ints([rng.int(5), rng.int(5)]),
    () => w.op(rng.int(256)),
  ];
  for (let i = 0; i < n; i++) gens[rng.int(gens.length)]();
  if (rng.next() < 0.9) w.stop();
  return w.bytes();
}

test(`fuzz: every reader survives mutated and random inputs (seed ${SEED})`, (t) => {
  const start = performance.now();
  // 1. Pure random bytes, with and without a known magic in front.
  const magics = [
    [],
    [0x50, 0x4b, 0x03, 0x04],
    [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0],
    [0x7b],
    [0x5b],
  ];
  for (let i = 0; i < 300; i++) {
    const m = magics[rng.int(magics.length)];
    const b = new Uint8Array(m.length + rng.int(300));
    b.set(m);
    for (let j = m.length; j < b.length; j++) b[j] = rng.int(256);
    fuzzOne(`random#${i}`, b);
  }
  // 2. Mutations of every seed, chained up to three times.
  for (let i = 0; i < 4000; i++) {
    const seed = seeds[i % seeds.length];
    let b = mutate(seed.bytes);
    const rounds = rng.int(3);
    for (let r = 0; r < rounds; r++) b = mutate(b);
    fuzzOne(`${seed.name} mutation#${i}`, b);
  }
  // 3. Mutated pickles inside valid archives (the CRC would otherwise reject most flips).
  const torchSeeds = seeds
    .filter((s) => s.bytes[0] === 0x50)
    .map((s) => ({ name: s.name, ...unpackTorch(s.bytes) }));
  for (let i = 0; i < 1500; i++) {
    const s = torchSeeds[i % torchSeeds.length];
    let pickle = mutate(s.pickle);
    if (rng.next() < 0.3) pickle = mutate(pickle);
    const archive = torchBytes(pickle, s.storages, { deflate: rng.next() < 0.3 });
    fuzzOne(`${s.name} pickle mutation#${i}`, archive, ["pt"]);
  }
  // 4. Random opcode programs.
  const storage = { "0": encode("int64", [3, 1, 4, 1, 5, 9, 2, 6]) };
  for (let i = 0; i < 1500; i++) {
    fuzzOne(`random pickle#${i}`, torchBytes(randomPickle(), storage), ["pt"]);
  }
  const seconds = (performance.now() - start) / 1000;
  t.diagnostic(
    `${stats.inputs} inputs, ${stats.calls} reader/interpreter calls: ${stats.values} values, ` +
      `${stats.formatErrors} EplbFormatErrors, ${seconds.toFixed(1)} s`,
  );
  assert.ok(stats.values > 100, "some mutations still parse (the fuzzer reaches deep code)");
  assert.ok(stats.formatErrors > 1000);
});

// ---------------------------------------------------------------------------------------------
// Bombs: small files that claim enormous sizes (issue 13)

test("fuzz: bomb families (deflate, auxiliary entries, huge declared shapes) are refused", () => {
  const families: { name: string; bytes: Uint8Array }[] = [];
  // Deflate bombs of several sizes and views, each refused before inflating.
  for (const mib of [65, 100, 256]) {
    for (const shape of [
      [mib, 1 << 20],
      [1 << 20, mib],
      [1000, 1_000_000],
    ]) {
      families.push({ name: `deflate ${mib} MiB as [${shape}]`, bytes: ptDeflateBomb(mib, shape) });
    }
  }
  for (const mib of [1, 17, 200]) {
    families.push({ name: `byteorder ${mib} MiB`, bytes: ptAuxiliaryBomb(mib) });
  }
  for (let i = 0; i < 40; i++) {
    const shape = Array.from({ length: 1 + rng.int(4) }, () => 1 + rng.int(2 ** (8 + rng.int(40))));
    families.push({ name: `huge shape [${shape}]`, bytes: ptHugeShape(shape) });
  }
  for (const { name, bytes } of families) {
    assert.throws(
      () => readTorch(bytes, "bomb.pt"),
      (e: unknown) => e instanceof EplbFormatError && !e.message.includes("\n"),
      name,
    );
  }
  // Mutations of small bombs reach the same checks from odd angles: a value or a format error.
  const small = [ptAuxiliaryBomb(1), ptDeflateBomb(1, [16, 65536]), ptHugeShape([1e6, 1e6])];
  for (let i = 0; i < 300; i++)
    fuzzOne(`bomb mutation#${i}`, mutate(small[i % small.length]), ["pt"]);
});

/** Peak resident memory (MiB) of a child process reading `path` as loads, and how it ended. */
function childRead(path: string): { maxRssMiB: number; outcome: string } {
  const read = new URL("../../src/io/read.js", import.meta.url).href;
  const script = `
    import { readLoads } from ${JSON.stringify(read)};
    let outcome = "value";
    try { readLoads(process.argv[1]); } catch (e) { outcome = e.name + ": " + e.message; }
    process.stdout.write(JSON.stringify({ maxRssMiB: process.resourceUsage().maxRSS / 1024, outcome }));
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script, path], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

test("bombs: a child process reading each stays under 1.5 GB resident", (t) => {
  const dir = mkdtempSync(join(tmpdir(), "eplb-bombs-"));
  try {
    const files = { ...bombFiles(), "line-20mb.csv": csvLongLine(20) };
    for (const [name, bytes] of Object.entries(files)) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      const { maxRssMiB, outcome } = childRead(path);
      t.diagnostic(
        `${name} (${bytes.length} bytes): ${maxRssMiB.toFixed(0)} MiB, ${outcome.slice(0, 120)}`,
      );
      assert.ok(maxRssMiB < 1536, `${name}: ${maxRssMiB} MiB resident`);
      if (name === "deflate-60m-max.pt") {
        // The worst accepted: 60 MiB inflated, 960 x 65536 loads of zeros (a valid file).
        assert.equal(outcome, "value");
      } else {
        assert.match(outcome, /^EplbFormatError: /, name);
      }
      // Refused before inflating or allocating: no more than the runtime and the file.
      if (!name.includes("60m") && name !== "pickle-ints-16m.pt") {
        assert.ok(
          maxRssMiB < 256,
          `${name}: ${maxRssMiB} MiB resident, expected a refusal up front`,
        );
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
