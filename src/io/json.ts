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
  try {
    return JSON.parse(text) as FileValue;
  } catch (error) {
    const message = oneLine(error instanceof Error ? error.message : String(error), 120);
    throw new EplbFormatError(file, `invalid JSON: ${message}`);
  }
}
