// The module graph of src/ (and bench/) as the layering rules want it: no import cycle, static or
// dynamic, and no library or benchmark code reaching into the CLI. Read from the TypeScript
// sources with TypeScript's own pre-processor, which lists `import`, `export ... from`,
// `import type` and dynamic `import()` alike.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { describe, test } from "node:test";
import ts from "typescript";
import { repoRoot } from "./helpers/cli.js";

/** Every `.ts` file under `dir`, as absolute paths. */
function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

/**
 * The modules a file loads: `import` and `export ... from` declarations and dynamic `import()`
 * calls, by specifier. Type-only imports (`import type`, or every name marked `type`) are left
 * out: the compiler erases them, so they load nothing and cannot close a cycle at run time.
 */
function loadedSpecifiers(text: string): string[] {
  const source = ts.createSourceFile("x.ts", text, ts.ScriptTarget.Latest, false);
  const out: string[] = [];
  const typeOnlyNames = (names: readonly { isTypeOnly: boolean }[]) =>
    names.length > 0 && names.every((n) => n.isTypeOnly);
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      const clause = node.importClause;
      const named = clause?.namedBindings;
      const typeOnly =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            named !== undefined &&
            ts.isNamedImports(named) &&
            typeOnlyNames(named.elements)));
      if (!typeOnly) out.push(node.moduleSpecifier.text);
    } else if (
      ts.isExportDeclaration(node) &&
      node.moduleSpecifier &&
      ts.isStringLiteral(node.moduleSpecifier)
    ) {
      const clause = node.exportClause;
      const typeOnly =
        node.isTypeOnly ||
        (clause !== undefined && ts.isNamedExports(clause) && typeOnlyNames(clause.elements));
      if (!typeOnly) out.push(node.moduleSpecifier.text);
    } else if (
      ts.isCallExpression(node) &&
      node.expression.kind === ts.SyntaxKind.ImportKeyword &&
      node.arguments.length > 0
    ) {
      const [arg] = node.arguments;
      // A computed specifier cannot be followed: refuse it rather than miss an edge.
      if (!ts.isStringLiteralLike(arg)) throw new Error(`import() of a computed specifier`);
      out.push(arg.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** The relative modules a file loads, resolved to the `.ts` files they name. */
function importsOf(file: string): string[] {
  return loadedSpecifiers(readFileSync(file, "utf8"))
    .filter((name) => name.startsWith("."))
    .map((name) => resolve(dirname(file), name.replace(/\.js$/, ".ts")));
}

/** The import graph of the given files, keyed by path relative to the repository. */
function importGraph(files: readonly string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const f of files) {
    graph.set(
      relative(repoRoot, f),
      importsOf(f).map((t) => relative(repoRoot, t)),
    );
  }
  return graph;
}

/**
 * One import cycle of the graph, as the list of its modules (the first repeated at the end), or
 * null when there is none. Depth-first search with the three colours.
 */
function findCycle(graph: ReadonlyMap<string, readonly string[]>): string[] | null {
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string): string[] | null => {
    state.set(node, "open");
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === "open") return [...stack.slice(stack.indexOf(next)), next];
      if (s === undefined) {
        const found = visit(next);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(node, "done");
    return null;
  };
  for (const node of [...graph.keys()].sort()) {
    if (state.get(node) === undefined) {
      const found = visit(node);
      if (found) return found;
    }
  }
  return null;
}

const srcFiles = sourceFiles(join(repoRoot, "src"));
const benchFiles = sourceFiles(join(repoRoot, "bench"));

describe("the module graph of src/", () => {
  test("the cycle finder finds a cycle through a dynamic import, and none in a tree", () => {
    // Parsed as the sources are: `export ... from` and a dynamic import are edges, type-only
    // imports (erased by the compiler) are not.
    assert.deepEqual(
      loadedSpecifiers(
        [
          'import { a } from "./a.js";',
          'import { type T, b } from "./b.js";',
          'import type { U } from "./u.js";',
          'import { type V } from "./v.js";',
          'export { c } from "./c.js";',
          'export type { W } from "./w.js";',
          'async function f() { await import("./main.js"); }',
        ].join("\n"),
      ),
      ["./a.js", "./b.js", "./c.js", "./main.js"],
    );
    const cyclic = new Map([
      ["main", ["report", "plan"]],
      ["report", ["plan", "main"]],
      ["plan", []],
    ]);
    assert.deepEqual(findCycle(cyclic), ["main", "report", "main"]);
    const tree = new Map([
      ["main", ["report", "plan"]],
      ["report", ["plan"]],
      ["plan", []],
    ]);
    assert.equal(findCycle(tree), null);
  });

  test("the sources are found (a walk over nothing would prove nothing)", () => {
    const names = srcFiles.map((f) => relative(repoRoot, f));
    assert.ok(names.includes(join("src", "cli", "main.ts")));
    assert.ok(names.includes(join("src", "pipeline", "sweep.ts")));
    assert.ok(names.length > 50, `${names.length} files`);
  });

  test("no import cycle among src/ files, static or dynamic", () => {
    const cycle = findCycle(importGraph(srcFiles));
    assert.equal(cycle, null, `import cycle: ${cycle?.join(" -> ")}`);
  });

  test("only the CLI imports the CLI: the pipeline, io, report, core and bench/ do not", () => {
    const graph = importGraph([...srcFiles, ...benchFiles]);
    const cli = `${join("src", "cli")}/`;
    const offenders = [...graph]
      .filter(([from]) => !from.startsWith(cli))
      .flatMap(([from, to]) => to.filter((t) => t.startsWith(cli)).map((t) => `${from} -> ${t}`));
    assert.deepEqual(offenders, []);
  });

  test("src/core imports nothing outside src/core (no Node modules, no I/O)", () => {
    const core = `${join("src", "core")}/`;
    const offenders: string[] = [];
    for (const f of srcFiles.filter((f) => relative(repoRoot, f).startsWith(core))) {
      const info = ts.preProcessFile(readFileSync(f, "utf8"), true, true);
      for (const { fileName } of info.importedFiles) {
        const target = fileName.startsWith(".")
          ? relative(repoRoot, resolve(dirname(f), fileName))
          : fileName;
        if (!target.startsWith(core)) offenders.push(`${relative(repoRoot, f)} -> ${fileName}`);
      }
    }
    assert.deepEqual(offenders, []);
  });
});
