import { Buffer } from "node:buffer";
import { EplbFormatError } from "./errors.js";

/**
 * Bounds-checked cursor over untrusted bytes. Every read checks the remaining length first, so a
 * truncated or lying file becomes an {@link EplbFormatError} ("truncated ...") instead of a
 * RangeError or a silent `undefined`.
 *
 * @example
 * ```ts
 * const r = new ByteReader(new Uint8Array([1, 0, 2]), "x.bin", "header");
 * r.u16(); // 1
 * r.u16(); // throws EplbFormatError: "x.bin: truncated header: needs 2 bytes at offset 2, 1 left"
 * ```
 */
export class ByteReader {
  readonly bytes: Uint8Array;
  readonly file: string;
  /** What is being read, for messages ("zip central directory", "pickle"). */
  readonly what: string;
  /** Exclusive end of the readable window. */
  readonly end: number;
  pos: number;
  private readonly view: DataView;

  constructor(bytes: Uint8Array, file: string, what: string, pos = 0, end = bytes.length) {
    this.bytes = bytes;
    this.file = file;
    this.what = what;
    this.pos = pos;
    this.end = end;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  /** Bytes left before {@link end}. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws "truncated" unless `n` more bytes can be read. */
  need(n: number): void {
    if (n > this.end - this.pos) {
      throw new EplbFormatError(
        this.file,
        `truncated ${this.what}: needs ${n} bytes at offset ${this.pos}, ${Math.max(0, this.end - this.pos)} left`,
      );
    }
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.pos++];
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.pos, true);
    this.pos += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }

  i32(): number {
    this.need(4);
    const v = this.view.getInt32(this.pos, true);
    this.pos += 4;
    return v;
  }

  /** Little-endian unsigned 64-bit integer; values above 2^53 - 1 are refused, not rounded. */
  u64(): number {
    this.need(8);
    const lo = this.view.getUint32(this.pos, true);
    const hi = this.view.getUint32(this.pos + 4, true);
    if (hi > 0x1fffff) {
      throw new EplbFormatError(
        this.file,
        `${this.what}: 64-bit size at offset ${this.pos} is larger than 2^53`,
      );
    }
    this.pos += 8;
    return hi * 4294967296 + lo;
  }

  /** Big-endian float64 (pickle's BINFLOAT is big-endian). */
  f64be(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, false);
    this.pos += 8;
    return v;
  }

  /** A view (no copy) of the next `n` bytes. */
  take(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/**
 * Short, single-line, printable rendering of a string taken from a file, so a hostile name (with
 * newlines or megabytes of text) cannot break the one-line error contract.
 *
 * @example
 * ```ts
 * printable("posix\nsystem"); // "\"posix\\nsystem\""
 * ```
 */
export function printable(text: string, max = 60): string {
  const cut = text.length > max ? `${text.slice(0, max - 3)}...` : text;
  return JSON.stringify(cut);
}

/**
 * An engine error message (JSON.parse, zlib) made safe for a one-line report: control characters
 * from the quoted input become spaces, and the text is cut to `max` characters.
 *
 * @example
 * ```ts
 * oneLine("Unexpected token '\n' in JSON"); // "Unexpected token ' ' in JSON"
 * ```
 */
export function oneLine(text: string, max = 100): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping them is the point
  const flat = text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 3)}...` : flat;
}

const utf8 = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });

/**
 * Decodes UTF-8 (invalid sequences become U+FFFD; a leading BOM is kept for the caller to skip).
 *
 * @example
 * ```ts
 * decodeUtf8(new Uint8Array([0x68, 0x69])); // "hi"
 * ```
 */
export function decodeUtf8(bytes: Uint8Array, file: string): string {
  try {
    return utf8.decode(bytes);
  } catch {
    // Only a string longer than V8's limit gets here.
    throw new EplbFormatError(file, `text of ${bytes.length} bytes is too large to decode`);
  }
}

/**
 * Decodes Latin-1 (numpy v1/v2 headers, Python 2 `str` in pickles).
 *
 * @example
 * ```ts
 * decodeLatin1(new Uint8Array([0x41])); // "A"
 * ```
 */
export function decodeLatin1(bytes: Uint8Array): string {
  // TextDecoder("latin1") is really windows-1252 (0x80-0x9f differ); Node's "latin1" maps each
  // byte to the code point of the same value, which is what Latin-1 means.
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("latin1");
}

/**
 * A copy of `bytes` in a fresh buffer. `Buffer#slice` (what `readFileSync` returns) is a view, not
 * a copy, unlike `Uint8Array#slice`: this copies whichever it is.
 *
 * @example
 * ```ts
 * copyBytes(readFileSync("x.pt").subarray(3, 11)).byteOffset; // 0
 * ```
 */
export function copyBytes(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(bytes.length);
  out.set(bytes);
  return out;
}
