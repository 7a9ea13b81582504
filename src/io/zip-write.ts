import { crc32 } from "./crc32.js";

/** One file to store in a ZIP archive. */
export interface ZipWriteEntry {
  /** Path inside the archive (ASCII, `/`-separated). */
  readonly name: string;
  readonly data: Uint8Array;
}

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
/** "FB": the extra-field id torch pads local headers with so that data starts aligned. */
const PAD_EXTRA_ID = 0x4246;

/**
 * A ZIP archive of stored (uncompressed) entries whose data each start at a multiple of
 * `alignment` bytes, as `torch.save` lays its archives out (it pads every local header with an
 * `FB` extra field of `Z`s so storages can be memory-mapped). CRC-32 and sizes sit in the local
 * headers (no data descriptors), names are ASCII, timestamps are zero (1980-01-01, as torch);
 * no ZIP64, so the archive must stay below 4 GiB and 65535 entries (65534 at most).
 *
 * @param entries the files, in archive order
 * @param alignment the data alignment in bytes (torch: 64)
 * @returns the archive's bytes
 * @throws RangeError when a name is not ASCII or the archive would need ZIP64
 * @example
 * ```ts
 * const zip = writeStoredZip([{ name: "a/version", data: new TextEncoder().encode("3\n") }]);
 * openZip(zip, "x.zip").entries.get("a/version")!.size; // 2
 * ```
 */
export function writeStoredZip(entries: readonly ZipWriteEntry[], alignment = 64): Uint8Array {
  const names = entries.map((e) => {
    if (!/^[\x20-\x7e]+$/.test(e.name)) {
      throw new RangeError(`zip entry name ${JSON.stringify(e.name)} must be printable ASCII`);
    }
    return new TextEncoder().encode(e.name);
  });
  // Layout pass: where each local header and its data go.
  const offsets: number[] = [];
  const pads: number[] = [];
  let pos = 0;
  for (let i = 0; i < entries.length; i++) {
    offsets.push(pos);
    const afterName = pos + 30 + names[i].length;
    // The extra field is at least its 4-byte header; grow its payload up to the boundary.
    const pad = (alignment - ((afterName + 4) % alignment)) % alignment;
    pads.push(pad);
    pos = afterName + 4 + pad + entries[i].data.length;
  }
  const centralStart = pos;
  const centralSize = names.reduce((n, name) => n + 46 + name.length, 0);
  const total = centralStart + centralSize + 22;
  // 0xffff entries or a 0xffffffff offset/size is the marker that sends readers to a ZIP64
  // record (APPNOTE 4.4.1.4), which this writer does not write: those values are out of reach too.
  if (total >= 0xffffffff || entries.length >= 0xffff) {
    throw new RangeError(`a ${total}-byte zip of ${entries.length} entries needs ZIP64`);
  }
  const out = new Uint8Array(total);
  const view = new DataView(out.buffer);
  const crcs = entries.map((e) => crc32(e.data));
  for (let i = 0; i < entries.length; i++) {
    let p = offsets[i];
    const size = entries[i].data.length;
    view.setUint32(p, SIG_LOCAL, true);
    view.setUint16(p + 4, 20, true); // version needed: 2.0
    view.setUint16(p + 6, 0, true); // flags
    view.setUint16(p + 8, 0, true); // method: stored
    view.setUint32(p + 10, 0, true); // time, date
    view.setUint32(p + 14, crcs[i], true);
    view.setUint32(p + 18, size, true);
    view.setUint32(p + 22, size, true);
    view.setUint16(p + 26, names[i].length, true);
    view.setUint16(p + 28, 4 + pads[i], true);
    out.set(names[i], p + 30);
    p += 30 + names[i].length;
    view.setUint16(p, PAD_EXTRA_ID, true);
    view.setUint16(p + 2, pads[i], true);
    out.fill(0x5a, p + 4, p + 4 + pads[i]); // 'Z'
    out.set(entries[i].data, p + 4 + pads[i]);
  }
  let p = centralStart;
  for (let i = 0; i < entries.length; i++) {
    const size = entries[i].data.length;
    view.setUint32(p, SIG_CENTRAL, true);
    view.setUint16(p + 4, 20, true); // made by
    view.setUint16(p + 6, 20, true); // needed
    view.setUint16(p + 8, 0, true);
    view.setUint16(p + 10, 0, true);
    view.setUint32(p + 12, 0, true);
    view.setUint32(p + 16, crcs[i], true);
    view.setUint32(p + 20, size, true);
    view.setUint32(p + 24, size, true);
    view.setUint16(p + 28, names[i].length, true);
    // extra, comment, disk, internal and external attributes: all zero
    view.setUint32(p + 42, offsets[i], true);
    out.set(names[i], p + 46);
    p += 46 + names[i].length;
  }
  view.setUint32(p, SIG_EOCD, true);
  view.setUint16(p + 8, entries.length, true);
  view.setUint16(p + 10, entries.length, true);
  view.setUint32(p + 12, centralSize, true);
  view.setUint32(p + 16, centralStart, true);
  return out;
}
