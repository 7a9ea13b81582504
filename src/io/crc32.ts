/**
 * CRC-32 (IEEE 802.3, the polynomial ZIP uses), table-driven. Written here because
 * `zlib.crc32` only exists from Node 20.15 / 22.2 and the package supports every Node 20.
 */

/** The 256-entry table of the reflected polynomial 0xEDB88320, built once on first use. */
let table: Uint32Array | undefined;

function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * The CRC-32 of `bytes` as an unsigned 32-bit integer (what a ZIP header stores). `previous`
 * continues a running checksum over several chunks.
 *
 * @param bytes the data to checksum
 * @param previous the CRC of the bytes before these (0 to start)
 * @returns the CRC-32, 0 ..= 0xffffffff
 * @throws never
 * @example
 * ```ts
 * crc32(new TextEncoder().encode("123456789")); // 0xcbf43926
 * ```
 */
export function crc32(bytes: Uint8Array, previous = 0): number {
  const t = crcTable();
  let c = ~previous >>> 0;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}
