import { decodeUtf8, oneLine } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import type { FileValue } from "./value.js";

/**
 * True when the text (after an optional UTF-8 BOM and whitespace) starts with `[` or `{`.
 *
 * @example
 * ```ts
 * looksLikeJson(new TextEncoder().encode(' {"weight": [[1]]}')); // true
 * ```
 */
export function looksLikeJson(bytes: Uint8Array): boolean {
  let i = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  while (i < bytes.length && i < 4096 && isSpace(bytes[i])) i++;
  return bytes[i] === 0x5b || bytes[i] === 0x7b;
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

/**
 * Parses a JSON file (UTF-8, optional BOM) into plain values. What the value means (loads,
 * trace, placement) is decided by the caller; this only reports syntax errors as
 * {@link EplbFormatError} with the parser's position.
 *
 * @example
 * ```ts
 * readJson(new TextEncoder().encode('{"phy2log": [[0, 1, 0]]}'), "plan.json");
 * // { phy2log: [[0, 1, 0]] }
 * ```
 */
export function readJson(bytes: Uint8Array, file: string): FileValue {
  let text = decodeUtf8(bytes, file);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let value: FileValue;
  try {
    value = JSON.parse(text) as FileValue;
  } catch (error) {
    const message = oneLine(error instanceof Error ? error.message : String(error), 120);
    throw new EplbFormatError(file, `invalid JSON: ${message}`);
  }
  checkJsonIntegers(text, file);
  return value;
}

/**
 * Refuses an integer literal beyond +-2^53 in (valid) JSON text: JSON.parse would round it to
 * the nearest float64 without a word, while the binary readers refuse such 64-bit values.
 * Literals with a fraction or an exponent are floats and stay as they are. One pass, skipping
 * strings.
 *
 * @param text JSON text that JSON.parse accepted
 * @param file the file, for the message
 * @throws EplbFormatError naming the literal and its position
 * @example
 * ```ts
 * checkJsonIntegers("[9007199254740993]", "x.json"); // throws: x.json: integer 9007199254740993 at character 1 is beyond +-2^53 ...
 * ```
 */
export function checkJsonIntegers(text: string, file: string): void {
  const n = text.length;
  let i = 0;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: skip to its closing quote (escapes skip one character)
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      i++;
      continue;
    }
    if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      let integer = true;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d >= 0x30 && d <= 0x39) i++;
        else if (d === 0x2e || d === 0x65 || d === 0x45 || d === 0x2b || d === 0x2d) {
          integer = false;
          i++;
        } else break;
      }
      // 2^53 has 16 digits: shorter literals are always exact.
      const digits = i - start - (c === 0x2d ? 1 : 0);
      if (integer && digits >= 16 && !Number.isSafeInteger(Number(text.slice(start, i)))) {
        throw new EplbFormatError(
          file,
          `integer ${text.slice(start, Math.min(i, start + 40))} at character ${start} is beyond +-2^53 and cannot be represented exactly`,
        );
      }
      continue;
    }
    i++;
  }
}
