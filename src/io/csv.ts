import { MAX_SHAPE } from "../core/model/limits.js";
import { decodeUtf8, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import type { Tensor } from "./tensor.js";

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const INTEGER = /^[+-]?\d+$/;
const SPECIAL = /^[+-]?(?:nan|inf|infinity)$/i;

/**
 * Most columns a CSV row may have: one per expert (or physical slot) of the largest shape eplb
 * plans. A longer row is refused as soon as it is counted, so a single 200 MB line costs no more
 * than the file itself.
 */
export const MAX_CSV_COLUMNS = Math.max(MAX_SHAPE.experts, MAX_SHAPE.replicas);

/** A number cell longer than this (quotes and spaces included) is not a number eplb reads. */
const MAX_CELL_BYTES = 256;

const CR = 0x0d;
const LF = 0x0a;
const COMMA = 0x2c;

/**
 * Reads a CSV of loads: one row per layer, one comma-separated column per expert. Blank lines and
 * `#` comment lines (numpy.savetxt headers) are ignored, as is a first row that is not all
 * numbers (a header such as `e0,e1,e2`). Cells may be quoted. Every row must have the same
 * number of columns, at most {@link MAX_CSV_COLUMNS}. NaN and infinities parse, so that the
 * loads check can name them; integers beyond +-2^53 are refused (a float64 would round them).
 * The bytes are scanned in place, one cell at a time: nothing proportional to a line is built.
 *
 * @example
 * ```ts
 * readCsv(new TextEncoder().encode("e0,e1\n1,2\n3,4\n"), "loads.csv");
 * // { dtype: "float64", shape: [2, 2], data: Float64Array [1, 2, 3, 4] }
 * ```
 */
export function readCsv(bytes: Uint8Array, file: string): Tensor {
  const n = bytes.length;
  let pos = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  let values = new Float64Array(1024);
  let count = 0;
  let columns = -1;
  let rows = 0;
  let sawRow = false;
  let lineNumber = 0;
  while (pos < n) {
    lineNumber++;
    let end = pos;
    while (end < n && bytes[end] !== LF && bytes[end] !== CR) end++;
    const next = end < n && bytes[end] === CR && bytes[end + 1] === LF ? end + 2 : end + 1;
    let start = pos;
    let stop = end;
    while (start < stop && isSpace(bytes[start])) start++;
    while (stop > start && isSpace(bytes[stop - 1])) stop--;
    pos = next;
    if (start === stop || bytes[start] === 0x23) continue;

    let cells = 1;
    for (let i = start; i < stop; i++) {
      if (bytes[i] === COMMA && ++cells > MAX_CSV_COLUMNS) {
        throw new EplbFormatError(
          file,
          `line ${lineNumber} has more than ${MAX_CSV_COLUMNS} columns (the most experts per layer eplb plans)`,
        );
      }
    }
    const header = !sawRow;
    sawRow = true;
    if (columns >= 0 && cells !== columns) {
      throw new EplbFormatError(
        file,
        `line ${lineNumber} has ${cells} columns, the first data row has ${columns}` +
          (hasByte(bytes, start, stop, 0x3b) || hasByte(bytes, start, stop, 0x09)
            ? " (only commas separate columns)"
            : ""),
      );
    }
    if (count + cells > values.length) {
      const grown = new Float64Array(Math.max(count + cells, 2 * values.length));
      grown.set(values.subarray(0, count));
      values = grown;
    }
    const rowStart = count;
    let cellStart = start;
    let column = 0;
    let isHeader = false;
    for (let i = start; i <= stop; i++) {
      if (i < stop && bytes[i] !== COMMA) continue;
      column++;
      const from = cellStart;
      cellStart = i + 1;
      const v = parseCell(bytes, from, i, file, lineNumber, column);
      if (v === undefined) {
        if (header) {
          isHeader = true;
          break;
        }
        throw new EplbFormatError(
          file,
          `line ${lineNumber} column ${column}: ${cellText(bytes, from, i, file)} is not a number`,
        );
      }
      values[count++] = v;
    }
    if (isHeader) {
      count = rowStart;
      continue;
    }
    if (columns < 0) columns = cells;
    rows++;
  }
  if (rows === 0) throw new EplbFormatError(file, "CSV has no data rows");
  return { dtype: "float64", shape: [rows, columns], data: values.slice(0, count) };
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0b || b === 0x0c;
}

function hasByte(bytes: Uint8Array, from: number, to: number, b: number): boolean {
  const at = bytes.indexOf(b, from);
  return at >= 0 && at < to;
}

/** The cell's text, trimmed and shown short, for messages. */
function cellText(bytes: Uint8Array, from: number, to: number, file: string): string {
  const cut = Math.min(to, from + 64);
  return printable(decodeUtf8(bytes.subarray(from, cut), file).trim());
}

function parseCell(
  bytes: Uint8Array,
  from: number,
  to: number,
  file: string,
  line: number,
  column: number,
): number | undefined {
  if (to - from > MAX_CELL_BYTES) return undefined;
  let s = decodeUtf8(bytes.subarray(from, to), file).trim();
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1).trim();
  if (NUMBER.test(s)) {
    const v = Number(s);
    if (INTEGER.test(s) && !Number.isSafeInteger(v)) {
      throw new EplbFormatError(
        file,
        `line ${line} column ${column}: integer ${printable(s, 40)} is beyond +-2^53 and cannot be represented exactly`,
      );
    }
    return v;
  }
  if (SPECIAL.test(s)) {
    const lower = s.toLowerCase();
    if (lower.endsWith("nan")) return Number.NaN;
    return lower.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  return undefined;
}
