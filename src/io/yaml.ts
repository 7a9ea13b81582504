import { decodeUtf8, printable } from "./bytes.js";
import { EplbFormatError } from "./errors.js";
import type { FileObject, FileValue } from "./value.js";

/** Deepest nesting of blocks or flow collections accepted (TensorRT-LLM configs need 2). */
const MAX_DEPTH = 32;

interface Line {
  /** 1-based line number, for messages. */
  readonly number: number;
  readonly indent: number;
  readonly text: string;
}

/**
 * Parses the YAML subset that placement configs use, e.g. TensorRT-LLM's MoE load balancer
 * file: block mappings (`num_slots: 288`), nested by indentation, whose values are scalars,
 * flow sequences and mappings (`[0, 1, 2]`, `{0: [1, 2]}`, which may wrap over several lines as
 * PyYAML writes them) or block sequences (`- 1`). Scalars: integers, floats, true/false,
 * null/~, quoted and plain strings; `#` comments. Anchors, aliases, tags, multi-line strings and
 * several documents are refused, and so are integers with a leading zero (`010`), which PyYAML
 * reads as octal. Keys become strings (`0:` is key `"0"`).
 *
 * @example
 * ```ts
 * readYaml(new TextEncoder().encode("num_slots: 4\ninitial_global_assignments:\n  0: [0, 1, 2, 0]\n"), "lb.yaml");
 * // { num_slots: 4, initial_global_assignments: { "0": [0, 1, 2, 0] } }
 * ```
 */
export function readYaml(bytes: Uint8Array, file: string): FileValue {
  let text = decodeUtf8(bytes, file);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const lines: Line[] = [];
  const raw = text.split(/\r\n|\n|\r/);
  for (let n = 0; n < raw.length; n++) {
    const content = stripComment(raw[n]).trimEnd();
    if (content.trim() === "") continue;
    const indent = content.length - content.trimStart().length;
    if (content.slice(0, indent).includes("\t")) {
      throw new EplbFormatError(file, `YAML line ${n + 1}: tabs are not allowed for indentation`);
    }
    const body = content.slice(indent);
    if (indent === 0 && (body === "---" || body.startsWith("--- "))) {
      if (lines.length > 0)
        throw new EplbFormatError(file, "several YAML documents are not supported");
      if (body === "---") continue;
      lines.push({ number: n + 1, indent: 0, text: body.slice(4).trim() });
      continue;
    }
    if (indent === 0 && body === "...") break;
    lines.push({ number: n + 1, indent, text: body });
  }
  if (lines.length === 0) return null;
  const parser = new BlockParser(lines, file);
  const value = parser.block(lines[0].indent, 0);
  if (parser.pos < lines.length) {
    parser.fail(lines[parser.pos], "unexpected indentation");
  }
  return value;
}

/** Removes a `#` comment that starts the line or follows whitespace, outside quotes. */
function stripComment(line: string): string {
  let quote = "";
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === "#" && (i === 0 || line[i - 1] === " " || line[i - 1] === "\t")) {
      return line.slice(0, i);
    }
  }
  return line;
}

class BlockParser {
  pos = 0;
  private readonly lines: Line[];
  private readonly file: string;
  constructor(lines: Line[], file: string) {
    this.lines = lines;
    this.file = file;
  }

  fail(line: Line, problem: string): never {
    throw new EplbFormatError(this.file, `YAML line ${line.number}: ${problem}`);
  }

  /** A block (mapping or sequence) whose lines start at exactly `indent`. */
  block(indent: number, depth: number): FileValue {
    const first = this.lines[this.pos];
    if (depth > MAX_DEPTH) this.fail(first, "nested too deeply");
    if (isSequenceItem(first.text)) return this.sequence(indent, depth);
    if (findColon(first.text) < 0) {
      // A lone scalar document, or a flow collection at top level.
      this.pos++;
      return this.inlineValue(first, first.text, depth);
    }
    return this.mapping(indent, depth);
  }

  private mapping(indent: number, depth: number): FileObject {
    const out: FileObject = {};
    while (this.pos < this.lines.length) {
      const line = this.lines[this.pos];
      if (line.indent < indent) break;
      if (line.indent > indent) this.fail(line, "unexpected indentation");
      if (isSequenceItem(line.text)) this.fail(line, "a list item where a key was expected");
      const colon = findColon(line.text);
      if (colon < 0) this.fail(line, `expected 'key: value', found ${printable(line.text)}`);
      const key = scalarKey(line.text.slice(0, colon).trim(), line, this);
      if (Object.hasOwn(out, key)) this.fail(line, `key ${printable(key)} appears twice`);
      const rest = line.text.slice(colon + 1).trim();
      this.pos++;
      let value: FileValue;
      if (rest !== "") {
        value = this.inlineValue(line, rest, depth);
      } else {
        value = this.nested(indent, depth, true);
      }
      Object.defineProperty(out, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
    }
    return out;
  }

  private sequence(indent: number, depth: number): FileValue[] {
    const out: FileValue[] = [];
    while (this.pos < this.lines.length) {
      const line = this.lines[this.pos];
      if (line.indent < indent) break;
      if (line.indent > indent) this.fail(line, "unexpected indentation");
      if (!isSequenceItem(line.text)) break;
      const rest = line.text.slice(1).trim();
      this.pos++;
      if (rest === "") out.push(this.nested(indent, depth, false));
      else if (findColon(rest) >= 0 && !/^[[{'"]/.test(rest)) {
        this.fail(line, "mappings inside list items are not supported");
      } else out.push(this.inlineValue(line, rest, depth));
    }
    return out;
  }

  /** The value of `key:` or `-` with nothing after it: a deeper block, or null. */
  private nested(indent: number, depth: number, allowSameIndentSequence: boolean): FileValue {
    const next = this.lines[this.pos];
    if (!next) return null;
    if (next.indent > indent) return this.block(next.indent, depth + 1);
    // YAML lets a mapping's sequence value sit at the key's own indentation.
    if (allowSameIndentSequence && next.indent === indent && isSequenceItem(next.text)) {
      return this.sequence(indent, depth + 1);
    }
    return null;
  }

  /** A scalar or flow collection starting on `line`; flow collections may continue below. */
  private inlineValue(line: Line, text: string, depth: number): FileValue {
    if (text.startsWith("[") || text.startsWith("{")) {
      // Scan each continuation line once (rescanning the joined text would be quadratic).
      const state = { quote: "", level: 0 };
      const parts = [text];
      scanFlow(text, state);
      while (state.level > 0) {
        const more = this.lines[this.pos];
        if (!more) this.fail(line, "unterminated flow collection");
        parts.push(more.text);
        scanFlow(more.text, state);
        this.pos++;
      }
      const joined = parts.join(" ");
      const flow = new FlowParser(joined, line, this);
      const value = flow.value(depth);
      flow.end();
      return value;
    }
    return scalar(text, line, this);
  }
}

function isSequenceItem(text: string): boolean {
  return text === "-" || text.startsWith("- ");
}

/** Index of the `: ` (or final `:`) separating a key from its value, outside quotes and flows. */
function findColon(text: string): number {
  let quote = "";
  let level = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = "";
    } else if (c === "'" || c === '"') quote = c;
    else if (c === "[" || c === "{") level++;
    else if (c === "]" || c === "}") level--;
    else if (c === ":" && level === 0 && (i + 1 === text.length || text[i + 1] === " ")) return i;
  }
  return -1;
}

/** Tracks bracket depth (outside quotes) across the lines of a wrapped flow collection. */
function scanFlow(text: string, state: { quote: string; level: number }): void {
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (state.quote) {
      if (c === state.quote) state.quote = "";
    } else if (c === "'" || c === '"') state.quote = c;
    else if (c === "[" || c === "{") state.level++;
    else if (c === "]" || c === "}") state.level--;
  }
}

function scalarKey(text: string, line: Line, p: BlockParser): string {
  const v = scalar(text, line, p);
  if (v === null) return "null";
  if (typeof v === "boolean") return String(v);
  return String(v);
}

const INT = /^[-+]?\d+$/;
const FLOAT = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;

function scalar(text: string, line: Line, p: BlockParser): FileValue {
  const t = text.trim();
  if (/^[&*!|>%@`]/.test(t)) {
    p.fail(line, `unsupported YAML feature (anchor, alias, tag or block scalar): ${printable(t)}`);
  }
  if (t.startsWith("'")) {
    if (t.length < 2 || !t.endsWith("'")) p.fail(line, "unterminated quoted string");
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t.startsWith('"')) {
    if (t.length < 2 || !t.endsWith('"')) p.fail(line, "unterminated quoted string");
    try {
      return JSON.parse(t) as string;
    } catch {
      p.fail(line, `invalid double-quoted string ${printable(t)}`);
    }
  }
  if (t === "" || t === "~" || t === "null" || t === "Null" || t === "NULL") return null;
  if (/^(?:true|True|TRUE)$/.test(t)) return true;
  if (/^(?:false|False|FALSE)$/.test(t)) return false;
  if (INT.test(t)) {
    // YAML 1.1, which PyYAML's safe_load (TensorRT-LLM's loader) follows, reads 010 as octal 8
    // and 09 as a string: reading either as decimal would be a silent difference.
    if (/^[-+]?0\d/.test(t)) {
      p.fail(
        line,
        `integer ${printable(t, 40)} has a leading zero, which PyYAML reads as octal (or as a string); write it without the zero`,
      );
    }
    const n = Number(t);
    if (!Number.isSafeInteger(n)) {
      // As a string it would become a layer key or an expert id rounded to a neighbour.
      p.fail(
        line,
        `integer ${printable(t, 40)} is beyond +-2^53 and cannot be represented exactly`,
      );
    }
    return n;
  }
  if (FLOAT.test(t)) return Number(t);
  return t;
}

/** Flow collections: `[a, b]`, `{k: v}`, nested, with scalars as in block context. */
class FlowParser {
  private pos = 0;
  private readonly text: string;
  private readonly line: Line;
  private readonly p: BlockParser;
  constructor(text: string, line: Line, p: BlockParser) {
    this.text = text;
    this.line = line;
    this.p = p;
  }

  end(): void {
    this.space();
    if (this.pos < this.text.length)
      this.p.fail(this.line, "unexpected text after a flow collection");
  }

  private space(): void {
    while (this.pos < this.text.length && this.text[this.pos] === " ") this.pos++;
  }

  value(depth: number): FileValue {
    if (depth > MAX_DEPTH) this.p.fail(this.line, "nested too deeply");
    this.space();
    const c = this.text[this.pos];
    if (c === "[") return this.sequence(depth);
    if (c === "{") return this.mapping(depth);
    return scalar(this.token(), this.line, this.p);
  }

  /** A scalar up to the next `,` `]` `}` or `: ` at this level (quotes respected). */
  private token(): string {
    const start = this.pos;
    let quote = "";
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (quote) {
        if (c === quote) quote = "";
      } else if (c === "'" || c === '"') quote = c;
      else if (c === "," || c === "]" || c === "}" || c === "[" || c === "{") break;
      else if (
        c === ":" &&
        (this.text[this.pos + 1] === " " || this.pos + 1 === this.text.length)
      ) {
        break;
      }
      this.pos++;
    }
    return this.text.slice(start, this.pos).trim();
  }

  private sequence(depth: number): FileValue[] {
    this.pos++;
    const out: FileValue[] = [];
    for (;;) {
      this.space();
      if (this.pos >= this.text.length) this.p.fail(this.line, "unterminated flow sequence");
      if (this.text[this.pos] === "]") {
        this.pos++;
        return out;
      }
      out.push(this.value(depth + 1));
      this.space();
      const c = this.text[this.pos];
      if (c === ",") this.pos++;
      else if (c !== "]") this.p.fail(this.line, "expected ',' or ']' in a flow sequence");
    }
  }

  private mapping(depth: number): FileObject {
    this.pos++;
    const out: FileObject = {};
    for (;;) {
      this.space();
      if (this.pos >= this.text.length) this.p.fail(this.line, "unterminated flow mapping");
      if (this.text[this.pos] === "}") {
        this.pos++;
        return out;
      }
      const key = scalarKey(this.token(), this.line, this.p);
      if (Object.hasOwn(out, key)) this.p.fail(this.line, `key ${printable(key)} appears twice`);
      this.space();
      if (this.text[this.pos] !== ":") this.p.fail(this.line, "expected ':' in a flow mapping");
      this.pos++;
      const value = this.value(depth + 1);
      Object.defineProperty(out, key, {
        value,
        enumerable: true,
        writable: true,
        configurable: true,
      });
      this.space();
      const c = this.text[this.pos];
      if (c === ",") this.pos++;
      else if (c !== "}") this.p.fail(this.line, "expected ',' or '}' in a flow mapping");
    }
  }
}
