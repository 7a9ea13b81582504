import assert from "node:assert/strict";
import * as fs from "node:fs";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as blocks from "../../src/blocks.js";
import type { CliContext } from "../../src/cli/command.js";
import * as main from "../../src/index.js";
import * as node from "../../src/node.js";
import * as report from "../../src/report/index.js";
import { type Claim, jsdocExamples, matches, prepareExample } from "./jsdoc-examples.js";

/**
 * Every ```ts block in a JSDoc comment of src/ runs here, so an example cannot rot.
 *
 * - Scope: the exports of every module of src/ (internal helpers document themselves too),
 *   overridden by every name of `eplb`, `eplb/blocks`, `eplb/report` and `eplb/node`, then by
 *   the exports of the example's own module; and `ctx`, a
 *   CLI context that captures what a command prints. An `import { x } from "eplb..."` line must
 *   name an export of that entry.
 * - Files: the working directory is a temporary folder holding the files examples name
 *   (`FIXTURES`: copies of ../shared/fixtures and test/fixtures/engines under the names the
 *   examples use, and `init.json` / `expert_map.json` written by the library), and
 *   `readFileSync` / `writeFileSync` of node:fs are in scope.
 * - Checked claims: a comment right after a top-level statement (same line, or the next line)
 *   that reads `// <literal>` checks the statement's value (an expression's, or a declaration's
 *   last variable); `// name = <literal>` (several joined by `, ` or `; `) checks variables;
 *   `// throws [SomeError][: message]` expects a throw (of that class; the message must contain
 *   the text, an ending `...` cut). Literals are JSON-like (`[1, 2]`, `{ a: 1 }`, `"x"`, numbers,
 *   `true`), `Int32Array [1, 2]` (type checked too), `Float64Array(1024)` (type and length),
 *   `0.93...` (digits checked) and `"<svg ... class=\"x\" ...>..."` (a string with parts left
 *   out: the rest checked in order, anchored at the ends that are not `...`); objects are
 *   compared on the keys the comment names (`{ a: 1, b: ..., ... }`: `b` must be there). A value
 *   left open at the end of a comment line goes on over the comment lines below it. Prose, or
 *   an array with members left out, is not checked.
 * - Every example runs alone: it prepares its inputs itself (a tiny trace or load matrix), so
 *   there is no skip list; the runner's own failures are tested at the end.
 */

const root = fileURLToPath(new URL("../../../", import.meta.url));

/** File or folder an example names -> where its content comes from (from the repository root). */
const FIXTURES: Record<string, string> = {
  examples: "examples",
  "routing.npy": "test/fixtures/routing/routing.npy",
  "steps.npy": "test/fixtures/routing/steps.npy",
  "hotness.npy": "../shared/fixtures/hotness-float32.npy",
  "trace.npy": "../shared/fixtures/hotness-int64.npy",
  "loads.npy": "../shared/fixtures/loads-2d-float64.npy",
  "sglang-init-p2l.pt": "../shared/fixtures/sglang-init-p2l.pt",
  "expert_distribution_recorder.pt": "../shared/fixtures/sglang-stat-dump-int32.pt",
  "dump.pt": "../shared/fixtures/sglang-stat-dump-int32.pt",
  "x.pt": "../shared/fixtures/sglang-stat-dump-int32.pt",
  "a.pt": "test/fixtures/engines/sglang/stat/expert_distribution_recorder_1760000000.1.pt",
  "b.pt": "test/fixtures/engines/sglang/stat/expert_distribution_recorder_1760000000.2.pt",
  "dump_0.pt":
    "test/fixtures/engines/sglang/per_pass/expert_distribution_recorder_1760000002.0_0.pt",
  "dump_1.pt":
    "test/fixtures/engines/sglang/per_pass/expert_distribution_recorder_1760000002.1_1.pt",
  dumps: "test/fixtures/engines/sglang/per_pass",
  "loads.npz": "test/fixtures/engines/npz/loads.npz",
  "state.npz": "test/fixtures/engines/npz/vllm-state.npz",
  per_token: "test/fixtures/engines/sglang/per_token",
  "old.pt": "test/fixtures/engines/legacy/loads-legacy.pt",
  stats: "test/fixtures/engines/trtllm/stats",
};

/** Placement files examples read: a 288-slot plan of 256 experts, and a vllm-ascend map. */
function writePlacementFixtures(dir: string): void {
  const plan = main.rebalanceExperts(main.lognormalLoads(2, 256, 1, 7), 288, 8, 4, 32);
  writeFileSync(join(dir, "init.json"), node.deepseekPlacementJson(plan.placement));
  const small = main.rebalanceExperts([[10, 40, 20, 30]], 8, 1, 1, 8);
  writeFileSync(join(dir, "expert_map.json"), node.vllmAscendExpertMap(small.placement, 8));
}

const ENTRIES: Record<string, Record<string, unknown>> = {
  eplb: main,
  "eplb/blocks": blocks,
  "eplb/report": report,
  "eplb/node": node,
};

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory()
        ? sourceFiles(join(dir, e.name))
        : e.name.endsWith(".ts") && !e.name.endsWith(".d.ts")
          ? [join(dir, e.name)]
          : [],
    )
    .sort();
}

const examples = sourceFiles(join(root, "src")).flatMap((path) =>
  jsdocExamples(relative(root, path), readFileSync(path, "utf8")),
);

function cliContext(cwd: string): CliContext & { out: string[] } {
  const out: string[] = [];
  return {
    out,
    stdout: (t) => {
      out.push(t);
    },
    stderr: (t) => {
      out.push(t);
    },
    stderrIsTTY: false,
    cwd,
  };
}

// biome-ignore lint/complexity/useArrowFunction: the constructor of async functions
const AsyncFunction = async function () {}.constructor as new (
  ...args: string[]
) => (...values: unknown[]) => Promise<void>;

/** Files that run something when imported (the CLI's executable, worker threads). */
function isEntryPoint(file: string): boolean {
  return file.endsWith("/bin.ts") || file.endsWith("-worker.ts");
}

let internal: Array<Record<string, unknown>> | undefined;

/** The exports of every built module of src/ (but entry points), imported once. */
async function internalModules(): Promise<Array<Record<string, unknown>>> {
  if (internal) return internal;
  const files = sourceFiles(join(root, "src"))
    .map((path) => relative(root, path))
    .filter((file) => !isEntryPoint(file));
  internal = [];
  for (const file of files) {
    const built = join(root, "dist", file.replace(/\.ts$/, ".js"));
    internal.push(await import(pathToFileURL(built).href));
  }
  return internal;
}

async function run(file: string, code: string, cwd: string): Promise<void> {
  const claims: Claim[] = [];
  const prepared = prepareExample(code, claims);
  for (const { from, names } of prepared.imports) {
    const entry = ENTRIES[from];
    if (!entry) continue; // a relative import inside src/: the module's own exports are in scope
    for (const name of names) assert.ok(name in entry, `${name} is not exported by ${from}`);
  }
  const scope: Record<string, unknown> = Object.create(null);
  // Internal helpers of other modules first, then the public entries, then the example's own
  // module: a name two modules export means what the nearest one means.
  for (const module of await internalModules()) Object.assign(scope, module);
  for (const entry of Object.values(ENTRIES)) Object.assign(scope, entry);
  if (!isEntryPoint(file)) {
    const built = join(root, "dist", file.replace(/\.ts$/, ".js"));
    Object.assign(scope, await import(pathToFileURL(built).href));
  }
  scope.ctx = cliContext(cwd);
  scope.readFileSync = fs.readFileSync;
  scope.writeFileSync = fs.writeFileSync;
  const check = async (value: () => unknown, index: number) => {
    const claim = claims[index] as Extract<Claim, { kind: "value" }>;
    const actual = await value();
    assert.ok(
      matches(actual, claim.expected),
      `${claim.path ?? "value"}: the comment says ${claim.text}, the code gives ${show(actual)}`,
    );
  };
  const throws = async (fn: () => Promise<void>, index: number) => {
    const claim = claims[index] as Extract<Claim, { kind: "throws" }>;
    let error: unknown;
    try {
      await fn();
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof Error, `the comment says "${claim.text}", nothing was thrown`);
    if (claim.name) assert.equal(error.name, claim.name, claim.text);
    // The whole message, or its pieces in order where the comment elides with "..." (before,
    // between or after them): a claim that is only the start of the message must say so.
    if (claim.message) {
      const pieces = claim.message.split("...").map((p) => p.trim());
      const said = `the comment says "${claim.text}", the message is "${error.message}"`;
      const last = pieces.length - 1;
      assert.ok(error.message.startsWith(pieces[0]), said);
      let from = pieces[0].length;
      for (let i = 1; i <= last; i++) {
        const at =
          i === last
            ? error.message.length - pieces[i].length
            : error.message.indexOf(pieces[i], from);
        assert.ok(at >= from && error.message.startsWith(pieces[i], at), said);
        from = at + pieces[i].length;
      }
      assert.equal(from, error.message.length, said);
    }
  };
  const fn = new AsyncFunction(
    "__scope",
    "__check",
    "__throws",
    `with (__scope) {\n${prepared.body}\n}`,
  );
  await fn(scope, check, throws);
}

function show(value: unknown): string {
  if (ArrayBuffer.isView(value)) {
    return `${value.constructor.name} [${Array.from(value as unknown as ArrayLike<number>).join(", ")}]`;
  }
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

describe("JSDoc examples of src/ run and say what the code does", () => {
  let cwd = "";
  let previousCwd = "";
  before(() => {
    cwd = mkdtempSync(join(tmpdir(), "eplb-jsdoc-"));
    for (const [name, from] of Object.entries(FIXTURES)) {
      cpSync(join(root, from), join(cwd, name), { recursive: true });
    }
    writePlacementFixtures(cwd);
    previousCwd = process.cwd();
    process.chdir(cwd);
  });
  after(() => {
    process.chdir(previousCwd);
    rmSync(cwd, { recursive: true, force: true });
  });

  test("the extractor finds the examples of every part of src/", () => {
    const files = new Set(examples.map((e) => e.file.split("/")[1]));
    for (const part of ["core", "io", "report", "cli"]) assert.ok(files.has(part), part);
    assert.ok(examples.length > 100, `${examples.length} examples`);
  });

  test("every @example of src/ is a ```ts block, so none escapes the runner", () => {
    const bare: string[] = [];
    for (const path of sourceFiles(join(root, "src"))) {
      const lines = readFileSync(path, "utf8").split("\n");
      lines.forEach((line, i) => {
        if (
          /^\s*\*\s*@example\b/.test(line) &&
          !/^\s*\*\s*```(ts|typescript)\s*$/.test(lines[i + 1])
        ) {
          bare.push(`${relative(root, path)}:${i + 1}`);
        }
      });
    }
    assert.deepEqual(bare, [], "an @example must open a ```ts block on its next line");
  });

  for (const example of examples) {
    test(`${example.file}:${example.line}: ${example.key.slice(0, 60)}`, () =>
      run(example.file, example.code, cwd));
  }

  // The runner must be able to fail: an example that rots is caught, whichever way it rots.
  describe("an example fails when", () => {
    // Each case passes when its claim is right, so what fails below is the claim alone.
    const file = "src/index.ts";
    test("a claimed value is not what the code gives", async () => {
      await run(file, "[1, 2].length; // 2\n", cwd);
      await assert.rejects(run(file, "[1, 2].length; // 3\n", cwd), /the comment says 3/);
      const plan = "const plan = rebalanceExperts([[1, 2]], 2, 1, 1, 1);\n";
      await run(file, `${plan}plan.logcnt; // [[1, 1]]\n`, cwd);
      await assert.rejects(run(file, `${plan}plan.logcnt; // [[2, 1]]\n`, cwd), /the code gives/);
    });
    test("a string with parts left out lacks a part, or has it elsewhere", async () => {
      const code = '"<svg class=\\"a\\">x</svg>";';
      await run(file, `${code} // '<svg ... class="a">...'\n`, cwd);
      await run(file, `${code} // '...>x</svg>'\n`, cwd);
      await assert.rejects(
        run(file, `${code} // '<svg ... class="b">...'\n`, cwd),
        /the code gives/,
      );
      await assert.rejects(run(file, `${code} // 'class="a">...'\n`, cwd), /the code gives/);
      await assert.rejects(run(file, `${code} // '...>x</sv'\n`, cwd), /the code gives/);
    });
    test("an object with parts left out differs on a key it names", async () => {
      const code =
        'const t = { dtype: "int32", data: new Float64Array(4), n: 2 / 3, extra: 1 };\nt;';
      await run(
        file,
        `${code} // { dtype: "int32", data: Float64Array(4), n: 0.666..., ... }\n`,
        cwd,
      );
      await run(file, `${code} // { dtype: "int32",\n// data: ..., ... }\n`, cwd);
      for (const wrong of [
        '{ dtype: "int64", ... }',
        "{ data: Float64Array(5), ... }",
        "{ data: Int32Array(4), ... }",
        "{ n: 0.665..., ... }",
        "{ missing: ..., ... }",
        '{ dtype: "int32",\n// n: 1 }',
      ]) {
        await assert.rejects(run(file, `${code} // ${wrong}\n`, cwd), /the code gives/, wrong);
      }
    });
    test("it uses a name nothing defines (inputs it does not prepare)", async () => {
      await assert.rejects(run(file, "strategySummary(result.eplb);\n", cwd), ReferenceError);
    });
    test("it imports a name its entry does not export", async () => {
      await run(file, 'import { planDeepseek } from "eplb";\n', cwd);
      await assert.rejects(
        run(file, 'import { planWithMetrics } from "eplb";\n', cwd),
        /planWithMetrics is not exported by eplb/,
      );
    });
    test("a claimed throw does not happen, or is another error or message", async () => {
      const bad = "toLoadMatrix([[-1]]); // throws";
      await run(file, `${bad} EplbInputError: weight[0][0] (-1) must be >= 0\n`, cwd);
      await run(file, `${bad} EplbInputError: ... must be >= 0\n`, cwd);
      await run(file, `${bad}: weight[0][0] ...\n`, cwd);
      await assert.rejects(
        run(file, "toLoadMatrix([[1]]); // throws\n", cwd),
        /nothing was thrown/,
      );
      await assert.rejects(run(file, `${bad} UsageError\n`, cwd), {
        actual: "EplbInputError",
        expected: "UsageError",
      });
      await assert.rejects(run(file, `${bad}: must be > 0\n`, cwd), /the message is/);
      // Part of the message without "..." is a claim about the whole message.
      await assert.rejects(run(file, `${bad}: must be >= 0\n`, cwd), /the message is/);
      await assert.rejects(run(file, `${bad}: weight[0][0] (-1) must be\n`, cwd), /the message is/);
    });
  });
});
