/**
 * Hostile files built at test time, small on disk and enormous once believed: deflate bombs in a
 * torch archive (a storage, several tensors over it, an auxiliary entry) and headers declaring
 * huge shapes. Also a script: `node dist/test/io/bombs.js DIR` writes them as files, to measure a
 * reader's peak memory on them from the command line (/usr/bin/time -v eplb plan --loads ...).
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import * as zlib from "node:zlib";
import {
  concat,
  encode,
  npyBytes,
  PickleWriter,
  pickleTensor,
  safetensorsBytes,
  type ZipInput,
  zipBytes,
} from "./support.js";

const MiB = 1 << 20;
const utf8 = new TextEncoder();

/**
 * A raw deflate stream of `mib` MiB of zeros, about 1 KB per MiB: one sync-flushed MiB repeated
 * (each copy ends byte-aligned on a non-final block, so copies concatenate), then a final empty
 * block. Nothing near the inflated size is ever allocated.
 */
export function zeroDeflate(mib: number): Uint8Array {
  const chunk = zlib.deflateRawSync(new Uint8Array(MiB), {
    finishFlush: zlib.constants.Z_SYNC_FLUSH,
  });
  const last = zlib.deflateRawSync(new Uint8Array(0));
  return concat(...Array.from({ length: mib }, () => new Uint8Array(chunk)), last);
}

/**
 * A torch.save archive whose one storage (`ByteStorage`, uint8) is deflated to inflate to `mib`
 * MiB of zeros, viewed by `tensors` tensors of `shape` (a list of them when more than one).
 */
export function ptDeflateBomb(mib: number, shape: number[], tensors = 1): Uint8Array {
  const numel = mib * MiB;
  const stride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
  const w = new PickleWriter().proto(2).emptyDict().str("logical_count");
  if (tensors > 1) w.emptyList().mark();
  for (let i = 0; i < tensors; i++) {
    pickleTensor(w, {
      storageClass: "ByteStorage",
      key: "0",
      numel,
      offset: 0,
      size: shape,
      stride,
    });
  }
  if (tensors > 1) w.appends();
  w.setitem().stop();
  const entries: ZipInput[] = [
    { name: "bomb/data.pkl", data: w.bytes() },
    { name: "bomb/byteorder", data: utf8.encode("little") },
    {
      name: "bomb/data/0",
      data: new Uint8Array(0),
      method: 8,
      deflated: { body: zeroDeflate(mib), size: numel },
    },
    { name: "bomb/version", data: utf8.encode("3\n") },
  ];
  return zipBytes(entries);
}

/**
 * The pickle of `{key: tensor}`, the tensor an int64 view (`size`, `stride`) of storage `0` of
 * `numel` elements.
 */
export function int64DictPickle(
  key: string,
  numel: number,
  size: number[],
  stride: number[],
): Uint8Array {
  const w = new PickleWriter().proto(2).emptyDict().str(key);
  pickleTensor(w, { storageClass: "LongStorage", key: "0", numel, offset: 0, size, stride });
  return w.setitem().stop().bytes();
}

/** An honest small torch archive whose `byteorder` entry inflates to `mib` MiB. */
export function ptAuxiliaryBomb(mib: number): Uint8Array {
  return zipBytes([
    { name: "bomb/data.pkl", data: int64DictPickle("logical_count", 4, [1, 4], [4, 1]) },
    {
      name: "bomb/byteorder",
      data: new Uint8Array(0),
      method: 8,
      deflated: { body: zeroDeflate(mib), size: mib * MiB },
    },
    { name: "bomb/data/0", data: encode("int64", [1, 2, 3, 4]) },
    { name: "bomb/version", data: utf8.encode("3\n") },
  ]);
}

/** A torch archive with a small honest storage but a tensor declaring `shape` over it. */
export function ptHugeShape(shape: number[]): Uint8Array {
  const pickle = int64DictPickle(
    "logical_count",
    4,
    shape,
    shape.map(() => 0),
  );
  return zipBytes([
    { name: "bomb/data.pkl", data: pickle },
    { name: "bomb/data/0", data: encode("int64", [1, 2, 3, 4]) },
  ]);
}

/** An `.npy` whose header declares `shape` over 16 bytes of data. */
export function npyHugeShape(shape: number[]): Uint8Array {
  return npyBytes("<i8", shape, [1, 2]);
}

/** A safetensors file declaring one tensor of `shape` over 16 bytes. */
export function safetensorsHugeShape(shape: number[]): Uint8Array {
  return safetensorsBytes([{ name: "weight", dtype: "I64", shape, data: encode("int64", [1, 2]) }]);
}

/**
 * A torch archive whose `data.pkl` is a list of `count` items, each made by the one-byte or
 * two-byte opcode `item` (`}` an empty dict, `K\x01` a small int), stored or deflated.
 */
export function ptPickleBomb(item: number[], count: number, deflate: boolean): Uint8Array {
  const body = new Uint8Array(4 + item.length * count + 2);
  body.set([0x80, 2, 0x5d, 0x28]); // PROTO 2, EMPTY_LIST, MARK
  for (let i = 0; i < count; i++) body.set(item, 4 + i * item.length);
  body.set([0x65, 0x2e], body.length - 2); // APPENDS, STOP
  const entry: ZipInput = deflate
    ? {
        name: "bomb/data.pkl",
        data: new Uint8Array(0),
        method: 8,
        deflated: { body: zlib.deflateRawSync(body), size: body.length },
      }
    : { name: "bomb/data.pkl", data: body };
  return zipBytes([entry]);
}

/** A CSV of one line of `mb` MB: "1,1,1,...", far more columns than any layer has experts. */
export function csvLongLine(mb: number): Uint8Array {
  return new Uint8Array(Buffer.from("1,".repeat((mb * 1e6) / 2)));
}

/** Every bomb family, by file name (about 1 MB each at most). */
export function bombFiles(): Record<string, Uint8Array> {
  return {
    "deflate-1g.pt": ptDeflateBomb(1024, [1000, 1_000_000]),
    "deflate-8x128m.pt": ptDeflateBomb(128, [128, 1_048_576], 8),
    // The worst a reader still accepts: 60 MiB inflated (under the 64 MiB budget), one uint8
    // tensor per inflated byte, within the largest shape; the 8-view variant hits the budget.
    "deflate-60m-max.pt": ptDeflateBomb(60, [960, 65536]),
    "deflate-8x60m.pt": ptDeflateBomb(60, [960, 65536], 8),
    "byteorder-600m.pt": ptAuxiliaryBomb(600),
    "pickle-dicts-stored.pt": ptPickleBomb([0x7d], 1_200_000, false),
    "pickle-ints-64m.pt": ptPickleBomb([0x4b, 1], 32 * 1024 * 1024, true),
    "pickle-ints-16m.pt": ptPickleBomb([0x4b, 1], 8 * 1024 * 1024 - 8, true),
    "huge-shape.pt": ptHugeShape([1_000_000, 1_000_000]),
    "huge-shape.npy": npyHugeShape([1_000_000_000, 1_000_000]),
    "huge-shape.safetensors": safetensorsHugeShape([1_000_000_000, 1_000_000]),
  };
}

if (process.argv[1]?.endsWith("bombs.js") && process.argv[2]) {
  for (const [name, bytes] of Object.entries(bombFiles())) {
    writeFileSync(join(process.argv[2], name), bytes);
  }
}
