import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import * as blocks from "../src/blocks.js";
import * as main from "../src/index.js";
import * as node from "../src/node.js";
import * as report from "../src/report/index.js";

/** The repository root, from dist/test/ where this file runs. */
const root = fileURLToPath(new URL("../../", import.meta.url));

/** Every name (values and types) the TypeScript module at `path` exports, by the compiler's count. */
function exportedNames(path: string): string[] {
  const file = `${root}${path}`;
  const program = ts.createProgram([file], {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    types: [],
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  assert.ok(source, path);
  const symbol = checker.getSymbolAtLocation(source);
  assert.ok(symbol, path);
  return checker.getExportsOfModule(symbol).map((s) => s.name);
}

function assertFunctions(entry: object, names: string[]): void {
  for (const name of names) {
    assert.equal(typeof (entry as Record<string, unknown>)[name], "function", name);
  }
}

describe("entries: the main entry is the small API a user needs", () => {
  test("at most 80 names, types included; the drop-in and the planners among them", () => {
    const names = exportedNames("src/index.ts");
    assert.ok(names.length <= 80, `src/index.ts exports ${names.length} names`);
    // Every runtime export is one of those names (the type count is not fooled by re-exports).
    for (const name of Object.keys(main)) assert.ok(names.includes(name), name);
    assert.ok(Object.keys(main).length <= names.length);
    assertFunctions(main, [
      "rebalanceExperts",
      "planDeepseek",
      "planBalanced",
      "toLoadMatrix",
      "makeTopology",
      "evaluatePlacement",
      "EplbInputError",
    ]);
    for (const type of ["RebalanceOptions", "BalancedOptions", "DeepseekOptions", "Topology"]) {
      assert.ok(names.includes(type), type);
    }
  });

  test("no workspace, kernel or report toolkit in the main entry: they are in eplb/blocks and eplb/report", () => {
    const mainNames = Object.keys(main);
    assert.deepEqual(
      mainNames.filter((n) => n.endsWith("Workspace") || /Layer$/.test(n) || n.startsWith("svg")),
      [],
    );
    assertFunctions(blocks, [
      "BalancedWorkspace",
      "planBalancedLayer",
      "greedyPacking",
      "MigrationWorkspace",
    ]);
    assertFunctions(report, ["htmlReport", "buildReportModel", "svgGpuBars", "svgHeatmap"]);
    // One home per name: the subpaths do not repeat the main entry.
    for (const entry of [blocks, report, node]) {
      assert.deepEqual(
        Object.keys(entry).filter((n) => mainNames.includes(n)),
        [],
      );
    }
  });

  test("package.json maps eplb, eplb/blocks, eplb/report and eplb/node to built files", () => {
    const pkg = JSON.parse(readFileSync(`${root}package.json`, "utf8")) as {
      exports: Record<string, { types: string; default: string } | string>;
    };
    assert.deepEqual(Object.keys(pkg.exports).sort(), [
      ".",
      "./blocks",
      "./node",
      "./package.json",
      "./report",
    ]);
    for (const [key, target] of Object.entries(pkg.exports)) {
      if (typeof target === "string") continue;
      for (const file of [target.types, target.default]) {
        assert.ok(existsSync(`${root}${file}`), `${key}: ${file}`);
        // Source files exist for the built ones (no stale entry left in dist/ by an old build).
        const src = file.replace(/^\.\/dist\//, "").replace(/\.d\.ts$|\.js$/, ".ts");
        assert.ok(existsSync(`${root}${src}`), `${key}: ${src}`);
      }
    }
  });
});

describe("entries: the docs import what the entries export", () => {
  test("every import from eplb, eplb/blocks, eplb/report or eplb/node in README.md and docs/ exists", () => {
    const entries: Record<string, Record<string, unknown>> = {
      eplb: main,
      "eplb/blocks": blocks,
      "eplb/report": report,
      "eplb/node": node,
    };
    const docs = [
      "README.md",
      ...readdirSync(`${root}docs`)
        .filter((f) => f.endsWith(".md"))
        .map((f) => `docs/${f}`),
    ];
    const missing: string[] = [];
    let imports = 0;
    for (const doc of docs) {
      const text = readFileSync(`${root}${doc}`, "utf8");
      for (const m of text.matchAll(
        /import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*"(eplb(?:\/\w+)?)"/g,
      )) {
        const entry = entries[m[2]];
        for (const raw of m[1].split(",")) {
          const name = raw
            .trim()
            .replace(/^type\s+/, "")
            .split(/\s+as\s+/)[0];
          if (name === "") continue;
          imports++;
          // Types have no run-time value: look them up among the compiled names.
          if (!entry || !(name in entry || exportedNames(entryPath(m[2])).includes(name))) {
            missing.push(`${doc}: ${name} from ${m[2]}`);
          }
        }
      }
    }
    assert.ok(imports > 10, `${imports} imports found`);
    assert.deepEqual(missing, []);
  });
});

function entryPath(entry: string): string {
  return (
    { eplb: "src/index.ts", "eplb/blocks": "src/blocks.ts", "eplb/report": "src/report/index.ts" }[
      entry
    ] ?? "src/node.ts"
  );
}
