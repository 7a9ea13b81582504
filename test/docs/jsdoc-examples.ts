import ts from "typescript";

/** One ```ts block of a JSDoc comment. */
export interface JsdocExample {
  /** Path of the source file, relative to the repository root. */
  file: string;
  /** 1-based line of the block's first code line in the source file. */
  line: number;
  /** The block's code, comment stars removed. */
  code: string;
  /**
   * The first two lines that are neither blank nor a comment, joined by ` / `: the example's name
   * in test titles.
   */
  key: string;
}

/**
 * Every ```ts block inside a `/** ... *\/` comment of a TypeScript source. Blocks in other
 * comments or in markdown are not examples; a block without its closing fence is ignored.
 *
 * @example
 * ```ts
 * jsdocExamples("a.ts", "/**\n * @example\n * ```ts\n * f(1); // 2\n * ```\n *\/")[0].code; // "f(1); // 2\n"
 * ```
 */
export function jsdocExamples(file: string, source: string): JsdocExample[] {
  const out: JsdocExample[] = [];
  for (const comment of source.matchAll(/\/\*\*[\s\S]*?\*\//g)) {
    const startLine = source.slice(0, comment.index).split("\n").length;
    const lines = comment[0].split("\n").map((l) => l.replace(/^\s*\/?\*+\/?\s?/, ""));
    let open = -1;
    for (let i = 0; i < lines.length; i++) {
      const fence = lines[i].trim();
      if (open < 0 && /^```(ts|typescript)\s*$/.test(fence)) open = i;
      else if (open >= 0 && fence === "```") {
        const body = lines.slice(open + 1, i);
        const code = `${body.join("\n")}\n`;
        const codeLines = body.map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("//"));
        const key = codeLines.slice(0, 2).join(" / ");
        out.push({ file, line: startLine + open + 1, code, key });
        open = -1;
      }
    }
  }
  return out;
}

/** What a comment after a statement says about it. */
export type Claim =
  | { kind: "value"; path: string | null; expected: unknown; text: string }
  | { kind: "throws"; name: string | null; message: string | null; text: string };

/** A number written with a trailing `...`: the actual value starts with these digits. */
export class Approx {
  constructor(
    readonly value: number,
    readonly decimals: number,
  ) {}
}

/**
 * A string written with `...` where text is left out: the actual string holds the pieces in
 * order (white space beside a `...` trimmed), starts with the first unless the string starts with
 * `...`, and ends with the last unless it ends with `...`.
 */
export class Elided {
  constructor(readonly pieces: string[]) {}
}

/** A typed array written as `Float64Array(1024)`: its type and length are checked. */
export class TypedLength {
  constructor(
    readonly type: string,
    readonly length: number,
  ) {}
}

/** A value written as `...` after a key: anything (the key must be there). */
const ANY = Symbol("any value");

/** A typed array written as `Int32Array [1, 2]`. */
export class Typed {
  constructor(
    readonly type: string,
    readonly values: unknown[],
  ) {}
}

const PATH = /^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*|\[\d+\])*(?=\s*=\s)/;

/**
 * The claims of a comment such as `// 8`, `// [1, 3]: why`, `// a = [1, 2], b = 3`,
 * `// 60; count = [2, 2, 1, 1]`, `// "eplb plan: ..."` or `// throws EplbInputError: message`.
 * Prose, and values that are not literals (`0.93... and more`, `{ ..., ... }`), make no claim.
 *
 * @example
 * ```ts
 * commentClaims("60; count = [2, 2]").length; // 2
 * ```
 */
export function commentClaims(text: string): Claim[] {
  const t = text.trim();
  const thrown = /^throws\b\s*([A-Z]\w*Error)?\s*:?\s*(.*)$/.exec(t);
  if (thrown) {
    const message = thrown[2].trim().replace(/^"(.*)"$/, "$1");
    return [{ kind: "throws", name: thrown[1] ?? null, message: message || null, text: t }];
  }
  const claims: Claim[] = [];
  let rest = t;
  let first = true;
  while (rest.length > 0) {
    const path = PATH.exec(rest);
    let name: string | null = null;
    if (path) {
      name = path[0];
      rest = rest.slice(path[0].length).replace(/^\s*=\s*/, "");
    } else if (!first) break;
    const lit = leadingLiteral(rest);
    if (!lit) break;
    claims.push({ kind: "value", path: name, expected: lit.value, text: lit.text });
    rest = rest.slice(lit.text.length);
    const sep = /^\s*[,;]\s+/.exec(rest);
    if (!sep || !PATH.test(rest.slice(sep[0].length))) break;
    rest = rest.slice(sep[0].length);
    first = false;
  }
  return claims;
}

/** The literal at the start of `text`, up to a top-level `,`, `;`, `:`, ` (` or the end. */
function leadingLiteral(text: string): { text: string; value: unknown } | null {
  let depth = 0;
  let quote = "";
  let end = text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if ("[{(".includes(c)) depth++;
    else if ("]})".includes(c)) depth--;
    else if (depth === 0 && (",;:".includes(c) || (c === " " && text[i + 1] === "("))) {
      end = i;
      break;
    }
  }
  const raw = text.slice(0, end).trimEnd();
  const value = literalValue(raw);
  return value === NOT_LITERAL ? null : { text: raw, value };
}

const NOT_LITERAL = Symbol("not a literal");

function literalValue(raw: string): unknown {
  const approx = /^(-?\d+)\.(\d+)\.\.\.$/.exec(raw);
  if (approx) return new Approx(Number(`${approx[1]}.${approx[2]}`), approx[2].length);
  const typed = /^((?:Int8|Uint8|Int16|Uint16|Int32|Uint32|Float32|Float64)Array) (\[.*\])$/.exec(
    raw,
  );
  if (typed) {
    const values = literalValue(typed[2]);
    return Array.isArray(values) ? new Typed(typed[1], values) : NOT_LITERAL;
  }
  if (!/^(?:[[{"'\d-]|true$|false$|null$|undefined$|NaN$|Infinity$|[A-Z]\w*Array$)/.test(raw)) {
    return NOT_LITERAL;
  }
  if (raw.includes("...") && (raw[0] === '"' || raw[0] === "'")) return elidedString(raw);
  const code = elisionCalls(raw);
  if (code === null) return NOT_LITERAL;
  try {
    // Only literals reach here (the first character says so; `...` became helper calls).
    return new Function(
      "__typed",
      "__length",
      "__approx",
      "__elided",
      "__any",
      `"use strict"; return (${typedCalls(code)});`,
    )(
      (type: string, values: unknown[]) => new Typed(type, values),
      (type: string, length: number) => new TypedLength(type, length),
      (digits: string) => literalValue(`${digits}...`),
      (text: string) => elidedString(JSON.stringify(text)),
      ANY,
    );
  } catch {
    return NOT_LITERAL;
  }
}

/**
 * The elisions of an object or array literal as helper calls: `0.93...` as `__approx("0.93")`,
 * a string with `...` as `__elided(...)`, `key: ...` as `key: __any` (any value), a `...` member
 * of an object dropped (keys not named are not compared anyway), `Float64Array(1024)` as
 * `__length("Float64Array", 1024)`. Null when a `...` stands anywhere else (in an array, whose
 * length is compared): such a value makes no claim.
 */
function elisionCalls(raw: string): string | null {
  let out = "";
  const stack: string[] = [];
  for (let i = 0; i < raw.length; ) {
    const c = raw[i];
    if (c === '"' || c === "'") {
      let j = i + 1;
      while (j < raw.length && raw[j] !== c) j += raw[j] === "\\" ? 2 : 1;
      const literal = raw.slice(i, j + 1);
      out += literal.includes("...")
        ? `__elided(${JSON.stringify(new Function(`"use strict"; return (${literal});`)())})`
        : literal;
      i = j + 1;
      continue;
    }
    const approx = /^-?\d+\.\d+\.\.\./.exec(raw.slice(i));
    if (approx && !/[\w.]/.test(raw[i - 1] ?? "")) {
      out += `__approx(${JSON.stringify(approx[0].slice(0, -3))})`;
      i += approx[0].length;
      continue;
    }
    if (raw.startsWith("...", i)) {
      const before = out.trimEnd();
      const after = raw.slice(i + 3).trimStart();
      if (before.endsWith(":")) out += "__any";
      else if (stack.at(-1) === "{" && /[{,]$/.test(before) && /^[,}]/.test(after)) {
        out = before;
        // Drop the member and its comma: `{ a: 1, ... }` and `{ ..., a: 1 }` both read `{ a: 1 }`.
        if (after.startsWith(",") && before.endsWith("{")) i = raw.indexOf(",", i + 3);
      } else return null;
      i += 3;
      continue;
    }
    if ("{[(".includes(c)) stack.push(c);
    else if ("}])".includes(c)) stack.pop();
    out += c;
    i++;
  }
  return out.replace(
    /\b((?:Int8|Uint8|Int16|Uint16|Int32|Uint32|Float32|Float64)Array)\((\d+)\)/g,
    '__length("$1", $2)',
  );
}

/** A whole string literal with `...` elisions as an {@link Elided}; anything else is no claim. */
function elidedString(raw: string): Elided | typeof NOT_LITERAL {
  const quote = raw[0];
  if ((quote !== '"' && quote !== "'") || raw.at(-1) !== quote || raw.length < 2)
    return NOT_LITERAL;
  // One literal, not two joined by other code: no unescaped quote inside.
  const inner = raw.slice(1, -1);
  if (new RegExp(`(^|[^\\\\])${quote}`).test(inner)) return NOT_LITERAL;
  try {
    const text = new Function(`"use strict"; return (${raw});`)() as unknown;
    if (typeof text !== "string") return NOT_LITERAL;
    // White space beside `...` belongs to the elision: `<svg ... class="a">` fits `<svg class="a">`.
    const pieces = text.split("...");
    const last = pieces.length - 1;
    return new Elided(
      pieces.map((p, i) => (i > 0 ? p.trimStart() : p)).map((p, i) => (i < last ? p.trimEnd() : p)),
    );
  } catch {
    return NOT_LITERAL;
  }
}

/** `Float64Array [1, 2]` inside a literal as `__typed("Float64Array", [1, 2])`. */
function typedCalls(raw: string): string {
  const typed = /\b((?:Int8|Uint8|Int16|Uint16|Int32|Uint32|Float32|Float64)Array) \[/.exec(raw);
  if (!typed) return raw;
  const open = typed.index + typed[0].length - 1;
  let depth = 0;
  for (let i = open; i < raw.length; i++) {
    if (raw[i] === "[") depth++;
    else if (raw[i] === "]" && --depth === 0) {
      const inner = raw.slice(open, i + 1);
      const call = `__typed(${JSON.stringify(typed[1])}, ${inner})`;
      return raw.slice(0, typed.index) + call + typedCalls(raw.slice(i + 1));
    }
  }
  return raw;
}

/**
 * Whether `actual` is what the comment claims: numbers equal to 1e-12 relative, an `Approx`
 * to its written digits, arrays element by element (a typed array equals a plain one of the same
 * values unless the comment names its type), objects on the keys the comment names.
 *
 * @example
 * ```ts
 * matches(new Int32Array([1, 2]), [1, 2]); // true
 * ```
 */
export function matches(actual: unknown, expected: unknown): boolean {
  if (expected instanceof Approx) {
    return (
      typeof actual === "number" &&
      Math.abs(actual - expected.value) < 10 ** -expected.decimals * (1 + 1e-9)
    );
  }
  if (expected instanceof Elided) {
    if (typeof actual !== "string") return false;
    const { pieces } = expected;
    const last = pieces.length - 1;
    if (!actual.startsWith(pieces[0])) return false;
    let from = pieces[0].length;
    for (let i = 1; i < last; i++) {
      const at = actual.indexOf(pieces[i], from);
      if (at < 0) return false;
      from = at + pieces[i].length;
    }
    return actual.length - pieces[last].length >= from && actual.endsWith(pieces[last]);
  }
  if (expected === ANY) return actual !== undefined;
  if (expected instanceof TypedLength) {
    return (
      ArrayBuffer.isView(actual) &&
      actual.constructor.name === expected.type &&
      (actual as unknown as ArrayLike<number>).length === expected.length
    );
  }
  if (expected instanceof Typed) {
    return (
      ArrayBuffer.isView(actual) &&
      actual.constructor.name === expected.type &&
      matches(Array.from(actual as unknown as ArrayLike<number>), expected.values)
    );
  }
  // A bare class name (`data: Float64Array`) claims the type only.
  if (typeof expected === "function") return actual instanceof expected;
  if (typeof expected === "number" && typeof actual === "number") {
    if (Object.is(actual, expected)) return true;
    return Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected));
  }
  if (Array.isArray(expected)) {
    const list = ArrayBuffer.isView(actual)
      ? Array.from(actual as unknown as ArrayLike<number>)
      : actual;
    return (
      Array.isArray(list) &&
      list.length === expected.length &&
      expected.every((e, i) => matches(list[i], e))
    );
  }
  if (expected !== null && typeof expected === "object") {
    if (actual === null || typeof actual !== "object") return false;
    const a = actual as Record<string, unknown>;
    return Object.entries(expected).every(([k, v]) => matches(a[k], v));
  }
  return Object.is(actual, expected);
}

/** The example as a function body: imports resolved, claims turned into checks. */
export interface Prepared {
  /** JavaScript for an async function body run inside `with (scope)`. */
  body: string;
  /** Names the example imports from each package entry (`eplb`, `eplb/node`, ...). */
  imports: Array<{ from: string; names: string[] }>;
  /** How many claims the example makes (checked by `__check` / `__throws` calls). */
  claims: number;
}

/**
 * Rewrites an example for the runner: `import ... from "eplb..."` and relative imports are
 * dropped (every entry's names are in scope) and reported for checking, other imports become
 * dynamic `await import(...)`, and each top-level statement followed by a comment with a claim
 * becomes a call of `__check(() => value, index)` or `__throws(() => { statement }, index)`.
 *
 * @example
 * ```ts
 * prepareExample("f(1); // 2\n", []).claims; // 1
 * ```
 */
export function prepareExample(code: string, claimsOut: Claim[]): Prepared {
  const sf = ts.createSourceFile("example.ts", code, ts.ScriptTarget.ES2022, true);
  const imports: Prepared["imports"] = [];
  const parts: string[] = [];
  const statements = sf.statements;
  for (let i = 0; i < statements.length; i++) {
    const s = statements[i];
    if (ts.isImportDeclaration(s) && ts.isStringLiteral(s.moduleSpecifier)) {
      const from = s.moduleSpecifier.text;
      const names: string[] = [];
      const bindings = s.importClause?.namedBindings;
      if (bindings && ts.isNamedImports(bindings)) {
        for (const el of bindings.elements) names.push((el.propertyName ?? el.name).text);
      }
      if (from === "eplb" || from.startsWith("eplb/") || from.startsWith(".")) {
        imports.push({ from, names });
        continue;
      }
      parts.push(dynamicImport(s, from, sf));
      continue;
    }
    const text = s.getText(sf);
    let emitted = false;
    for (const claim of claimsAfter(code, s, statements[i + 1])) {
      const index = claimsOut.push(claim) - 1;
      if (claim.kind === "throws") {
        parts.push(`await __throws(async () => { ${text} }, ${index});`);
        emitted = true;
        continue;
      }
      if (claim.path === null && ts.isExpressionStatement(s) && !emitted) {
        parts.push(`await __check(async () => (${s.expression.getText(sf)}), ${index});`);
        emitted = true;
        continue;
      }
      let path = claim.path;
      if (path === null) {
        const last = ts.isVariableStatement(s) ? s.declarationList.declarations.at(-1) : undefined;
        if (!last || !ts.isIdentifier(last.name)) continue; // a statement without a value
        path = last.name.text;
      }
      if (!emitted) parts.push(text);
      emitted = true;
      parts.push(`await __check(() => (${path}), ${index});`);
    }
    if (!emitted) parts.push(text);
  }
  const generated = parts.join("\n");
  const js = ts.transpileModule(generated, {
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext },
  }).outputText;
  return { body: js.replace(/^export \{\};\s*$/m, ""), imports, claims: claimsOut.length };
}

/** `import { a, b as c } from "x"` as `const { a, b: c } = await import("x")`. */
function dynamicImport(s: ts.ImportDeclaration, from: string, sf: ts.SourceFile): string {
  const clause = s.importClause;
  const out: string[] = [];
  const spec = JSON.stringify(from);
  if (clause?.name) out.push(`const ${clause.name.text} = (await import(${spec})).default;`);
  const b = clause?.namedBindings;
  if (b && ts.isNamespaceImport(b)) out.push(`const ${b.name.text} = await import(${spec});`);
  if (b && ts.isNamedImports(b)) {
    const names = b.elements.map((el) =>
      el.propertyName ? `${el.propertyName.getText(sf)}: ${el.name.text}` : el.name.text,
    );
    out.push(`const { ${names.join(", ")} } = await import(${spec});`);
  }
  return out.join("\n");
}

/** Claims of the first comment after `s` (same line, or the lines before the next statement). */
function claimsAfter(code: string, s: ts.Statement, next: ts.Statement | undefined): Claim[] {
  // A same-line comment is a trailing one for TypeScript; one on the next line, a leading one.
  const ranges =
    ts.getTrailingCommentRanges(code, s.end) ?? ts.getLeadingCommentRanges(code, s.end);
  const first = ranges?.[0];
  if (!first || first.kind !== ts.SyntaxKind.SingleLineCommentTrivia) return [];
  if (next && first.pos >= next.getStart()) return [];
  // A comment on a later line belongs to this statement only if a blank line does not part them.
  if (/\n\s*\n/.test(code.slice(s.end, first.pos))) return [];
  let text = code.slice(first.pos + 2, first.end);
  // A value left open (`// { a: 1,`) goes on over the comment lines right below it.
  for (let end = first.end; openBrackets(text) > 0; ) {
    const more = ts.getLeadingCommentRanges(code, end)?.[0];
    if (!more || more.kind !== ts.SyntaxKind.SingleLineCommentTrivia) break;
    if ((next && more.pos >= next.getStart()) || /\n\s*\n/.test(code.slice(end, more.pos))) break;
    text += ` ${code.slice(more.pos + 2, more.end).trim()}`;
    end = more.end;
  }
  return commentClaims(text);
}

/** Brackets opened and not closed in `text`, outside strings. */
function openBrackets(text: string): number {
  let depth = 0;
  let quote = "";
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === "\\") i++;
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'") quote = c;
    else if ("[{(".includes(c)) depth++;
    else if ("]})".includes(c)) depth--;
  }
  return depth;
}
