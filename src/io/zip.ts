import * as zlib from "node:zlib";
import { ByteReader, copyBytes, decodeUtf8, oneLine, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";

/** One file inside a ZIP archive, as the central directory describes it. */
export interface ZipEntry {
  readonly name: string;
  /** 0 = stored, 8 = deflate; anything else is refused when read. */
  readonly method: number;
  readonly compressedSize: number;
  readonly size: number;
  readonly crc32: number;
  readonly flags: number;
  /** Offset of the entry's local file header. */
  readonly localOffset: number;
}

/** A ZIP archive held in memory: its entries by name and a way to get their bytes. */
export interface ZipArchive {
  readonly entries: ReadonlyMap<string, ZipEntry>;
  /**
   * The uncompressed bytes of an entry (a view into the archive for stored entries). An entry
   * declaring more than `maxBytes` is refused before anything is inflated; so is a compressed
   * entry that would take the archive's inflated bytes beyond {@link maxInflatedBytes}.
   */
  read(entry: ZipEntry, maxBytes?: number): Uint8Array;
}

/**
 * The most bytes the compressed (deflated) entries of one archive may inflate to in all: 64 MiB,
 * or 8 times the archive's size when that is more. Deflate expands up to 1032 times, so a 1 MB
 * file could otherwise ask for a gigabyte; torch.save itself never compresses (its entries are
 * stored and bounded by the file), so only re-zipped files meet this limit.
 *
 * @example
 * ```ts
 * maxInflatedBytes(1_000_000); // 67108864
 * ```
 */
export function maxInflatedBytes(archiveBytes: number): number {
  return Math.max(MAX_INFLATED_BYTES, 8 * archiveBytes);
}

/** See {@link maxInflatedBytes}. */
export const MAX_INFLATED_BYTES = 64 * 1024 * 1024;

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
/** Deflate cannot expand data more than ~1032:1; a header claiming more is lying (zip bomb). */
const MAX_DEFLATE_RATIO = 1032;

// Feature-detected: zlib.crc32 exists from Node 20.15 / 22.2. Without it entries are not checked.
const crc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32;

/**
 * Opens a ZIP archive from memory by its central directory (never by scanning local headers, which
 * torch leaves with zero sizes and a data descriptor). Supports stored and deflate entries and the
 * ZIP64 records torch always writes; refuses encryption, multi-disk archives and other methods.
 * Every offset and size is checked against the buffer before use.
 *
 * @example
 * ```ts
 * const zip = openZip(readFileSync("dump.pt"), "dump.pt");
 * // torch.save names the archive's folder after the file it first wrote
 * const name = [...zip.entries.keys()].find((n) => n.endsWith("/data.pkl"))!;
 * zip.read(zip.entries.get(name)!).length > 0; // true
 * ```
 */
export function openZip(bytes: Uint8Array, file: string): ZipArchive {
  const len = bytes.length;
  if (len < 22) throw new EplbFormatError(file, `not a zip archive: only ${len} bytes`);
  const eocd = findEndOfCentralDirectory(bytes, file);
  const r = new ByteReader(bytes, file, "zip end of central directory", eocd + 4);
  const disk = r.u16();
  const cdDisk = r.u16();
  let entriesOnDisk = r.u16();
  let total = r.u16();
  let cdSize = r.u32();
  let cdOffset = r.u32();
  if (total === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    ({ total, cdSize, cdOffset, entriesOnDisk } = readZip64End(bytes, file, eocd));
  } else if (disk !== 0 || cdDisk !== 0) {
    throw new EplbFormatError(file, "multi-disk zip archives are not supported");
  }
  if (entriesOnDisk !== total) {
    throw new EplbFormatError(file, "multi-disk zip archives are not supported");
  }
  if (cdOffset + cdSize > eocd) {
    throw new EplbFormatError(
      file,
      `zip central directory (offset ${cdOffset}, ${cdSize} bytes) runs past its end record at ${eocd}`,
    );
  }
  if (total * 46 > cdSize) {
    throw new EplbFormatError(
      file,
      `zip central directory claims ${total} entries in ${cdSize} bytes`,
    );
  }
  const entries = new Map<string, ZipEntry>();
  const c = new ByteReader(bytes, file, "zip central directory", cdOffset, cdOffset + cdSize);
  for (let i = 0; i < total; i++) {
    const at = c.pos;
    if (c.u32() !== SIG_CENTRAL) {
      throw new EplbFormatError(
        file,
        `zip central directory entry ${i} at ${at} has a bad signature`,
      );
    }
    c.pos += 4; // version made by, version needed
    const flags = c.u16();
    const method = c.u16();
    c.pos += 4; // time, date
    const crc = c.u32();
    let compressedSize = c.u32();
    let size = c.u32();
    const nameLen = c.u16();
    const extraLen = c.u16();
    const commentLen = c.u16();
    c.pos += 8; // disk start, internal attributes, external attributes
    let localOffset = c.u32();
    const name = decodeUtf8(c.take(nameLen), file);
    const extra = new ByteReader(
      copyBytes(c.take(extraLen)),
      file,
      `zip extra field of ${printable(name)}`,
    );
    c.take(commentLen);
    if (size === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
      // ZIP64 extended information: the 64-bit values appear only for the fields set to ~0.
      while (extra.remaining >= 4) {
        const id = extra.u16();
        const n = extra.u16();
        const body = new ByteReader(extra.take(n), file, `zip64 field of ${printable(name)}`);
        if (id !== 0x0001) continue;
        if (size === 0xffffffff) size = body.u64();
        if (compressedSize === 0xffffffff) compressedSize = body.u64();
        if (localOffset === 0xffffffff) localOffset = body.u64();
        break;
      }
      if (size === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
        throw new EplbFormatError(file, `zip entry ${printable(name)} lacks its ZIP64 sizes`);
      }
    }
    if (localOffset + 30 + compressedSize > cdOffset) {
      throw new EplbFormatError(
        file,
        `zip entry ${printable(name)} (${compressedSize} bytes at ${localOffset}) overlaps the central directory`,
      );
    }
    if (entries.has(name)) {
      // Readers disagree on which copy counts (Python's zipfile takes the last, others the
      // first): whichever we took, some engine would read the other.
      throw new EplbFormatError(
        file,
        `zip entry ${printable(name)} appears twice: the archive is ambiguous`,
      );
    }
    entries.set(name, { name, method, compressedSize, size, crc32: crc, flags, localOffset });
  }
  // Entries may not share bytes: otherwise many names could inflate the same compressed data
  // (a 1 MB file claiming terabytes), defeating the per-entry ratio check.
  const spans = [...entries.values()].sort((a, b) => a.localOffset - b.localOffset);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1];
    if (prev.localOffset + 30 + prev.compressedSize > spans[i].localOffset) {
      throw new EplbFormatError(
        file,
        `zip entries ${printable(prev.name)} and ${printable(spans[i].name)} overlap`,
      );
    }
  }
  let inflateBudget = maxInflatedBytes(len);
  return {
    entries,
    read: (entry, maxBytes = Number.POSITIVE_INFINITY) => {
      if (entry.size > maxBytes) {
        throw new EplbFormatError(
          file,
          `zip entry ${printable(entry.name)} declares ${entry.size} bytes, at most ${maxBytes} expected`,
        );
      }
      if (entry.method === 8) {
        if (entry.size > inflateBudget) {
          throw new EplbFormatError(
            file,
            `zip entry ${printable(entry.name)} would inflate to ${entry.size} bytes, beyond the ` +
              `${maxInflatedBytes(len)} bytes compressed entries may hold in all (decompression bomb?)`,
          );
        }
        inflateBudget -= entry.size;
      }
      return readEntry(bytes, file, entry, cdOffset);
    },
  };
}

function findEndOfCentralDirectory(bytes: Uint8Array, file: string): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // The end record is 22 bytes plus a comment of at most 65535 bytes, so search only that tail.
  const stop = Math.max(0, bytes.length - 22 - 65535);
  for (let p = bytes.length - 22; p >= stop; p--) {
    if (bytes[p] === 0x50 && view.getUint32(p, true) === SIG_EOCD) {
      const commentLen = view.getUint16(p + 20, true);
      if (p + 22 + commentLen <= bytes.length) return p;
    }
  }
  throw new EplbFormatError(file, "not a zip archive or truncated: no end of central directory");
}

function readZip64End(
  bytes: Uint8Array,
  file: string,
  eocd: number,
): { total: number; cdSize: number; cdOffset: number; entriesOnDisk: number } {
  if (eocd < 20) throw new EplbFormatError(file, "zip64 end locator missing");
  const loc = new ByteReader(bytes, file, "zip64 end locator", eocd - 20, eocd);
  if (loc.u32() !== SIG_ZIP64_LOCATOR) throw new EplbFormatError(file, "zip64 end locator missing");
  const disk = loc.u32();
  const recordOffset = loc.u64();
  const disks = loc.u32();
  if (disk !== 0 || disks > 1) {
    throw new EplbFormatError(file, "multi-disk zip archives are not supported");
  }
  if (recordOffset + 56 > eocd - 20) {
    throw new EplbFormatError(file, `zip64 end record offset ${recordOffset} is out of range`);
  }
  const r = new ByteReader(bytes, file, "zip64 end record", recordOffset, eocd - 20);
  if (r.u32() !== SIG_ZIP64_EOCD)
    throw new EplbFormatError(file, "zip64 end record has a bad signature");
  r.pos += 8 + 4; // record size, versions
  const d = r.u32();
  const cd = r.u32();
  if (d !== 0 || cd !== 0)
    throw new EplbFormatError(file, "multi-disk zip archives are not supported");
  const entriesOnDisk = r.u64();
  const total = r.u64();
  const cdSize = r.u64();
  const cdOffset = r.u64();
  if (cdOffset + cdSize > recordOffset) {
    throw new EplbFormatError(file, "zip64 central directory runs past the zip64 end record");
  }
  return { total, cdSize, cdOffset, entriesOnDisk };
}

function readEntry(bytes: Uint8Array, file: string, entry: ZipEntry, limit: number): Uint8Array {
  const { name } = entry;
  const label = `zip entry ${printable(name)}`;
  if (entry.flags & 0x1) throw new EplbFormatError(file, `${label} is encrypted`);
  const h = new ByteReader(bytes, file, `local header of ${label}`, entry.localOffset, limit);
  if (h.u32() !== SIG_LOCAL)
    throw new EplbFormatError(file, `${label} has a bad local header signature`);
  h.pos += 22;
  const nameLen = h.u16();
  const extraLen = h.u16();
  // The local extra field differs from the central one (torch pads data to 64 bytes there).
  h.take(nameLen + extraLen);
  const compressed = h.take(entry.compressedSize);
  let data: Uint8Array;
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.size) {
      throw new EplbFormatError(
        file,
        `${label} is stored but its sizes differ (${entry.compressedSize} vs ${entry.size})`,
      );
    }
    data = compressed;
  } else if (entry.method === 8) {
    if (entry.size > entry.compressedSize * MAX_DEFLATE_RATIO + 64) {
      throw new EplbFormatError(
        file,
        `${label} claims ${entry.size} bytes from ${entry.compressedSize} compressed: impossible`,
      );
    }
    try {
      data = zlib.inflateRawSync(compressed, { maxOutputLength: Math.max(1, entry.size) });
    } catch (error) {
      throw new EplbFormatError(file, `${label}: corrupt deflate data (${errorText(error)})`);
    }
    if (data.length !== entry.size) {
      throw new EplbFormatError(
        file,
        `${label} inflates to ${data.length} bytes, the directory says ${entry.size}`,
      );
    }
  } else {
    throw new EplbFormatError(file, `${label} uses unsupported compression method ${entry.method}`);
  }
  // torch may be told not to compute checksums and then writes 0; only a non-zero CRC is checked.
  if (crc32 && entry.crc32 !== 0 && crc32(data) >>> 0 !== entry.crc32) {
    throw new EplbFormatError(file, `${label} is corrupt: CRC-32 mismatch`);
  }
  return data;
}

function errorText(error: unknown): string {
  return oneLine(error instanceof Error ? error.message : String(error), 80);
}
