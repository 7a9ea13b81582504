import { decodeUtf8, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import type { Tensor } from "./tensor.js";

const NUMBER = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const SPECIAL = /^[+-]?(?:nan|inf|infinity)$/i;

/**
 * Reads a CSV of loads: one row per layer, one comma-separated column per expert. Blank lines and
 * `#` comment lines (numpy.savetxt headers) are ignored, as is a first row that is not all
 * numbers (a header such as `e0,e1,e2`). Cells may be quoted. Every row must have the same
 * number of columns. NaN and infinities parse, so that the loads check can name them.
 *
 * @example
 * ```ts
 * readCsv(new TextEncoder().encode("e0,e1\n1,2\n3,4\n"), "loads.csv");
 * // { dtype: "float64", shape: [2, 2], data: Float64Array [1, 2, 3, 4] }
 * ```
 */
export function readCsv(bytes: Uint8Array, file: string): Tensor {
  let text = decodeUtf8(bytes, file);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines = text.split(/\r\n|\n|\r/);
  const values: number[] = [];
  let columns = -1;
  let rows = 0;
  let sawRow = false;
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n].trim();
    if (line === "" || line.startsWith("#")) continue;
    const cells = line.split(",");
    const parsed = cells.map(parseCell);
    if (!sawRow) {
      sawRow = true;
      if (parsed.some((v) => v === undefined)) continue; // a header row
    }
    if (columns < 0) columns = cells.length;
    if (cells.length !== columns) {
      throw new EplbFormatError(
        file,
        `line ${n + 1} has ${cells.length} columns, the first data row has ${columns}` +
          (line.includes(";") || line.includes("\t") ? " (only commas separate columns)" : ""),
      );
    }
    for (let c = 0; c < cells.length; c++) {
      const v = parsed[c];
      if (v === undefined) {
        throw new EplbFormatError(
          file,
          `line ${n + 1} column ${c + 1}: ${printable(cells[c].trim())} is not a number`,
        );
      }
      values.push(v);
    }
    rows++;
  }
  if (rows === 0) throw new EplbFormatError(file, "CSV has no data rows");
  return { dtype: "float64", shape: [rows, columns], data: Float64Array.from(values) };
}

function parseCell(cell: string): number | undefined {
  let s = cell.trim();
  if (s.length >= 2 && s.startsWith('"') && s.endsWith('"')) s = s.slice(1, -1).trim();
  if (NUMBER.test(s)) return Number(s);
  if (SPECIAL.test(s)) {
    const lower = s.toLowerCase();
    if (lower.endsWith("nan")) return Number.NaN;
    return lower.startsWith("-") ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
  }
  return undefined;
}
