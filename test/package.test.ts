import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { tempFiles } from "./helpers/temp.js";

/**
 * What an npm user gets: the packed tarball installed into an empty project (offline: the
 * package has no runtime dependencies), then used as a library (the four entries), with its
 * types (strict tsc against the installed package) and as the `eplb` command.
 */

const root = fileURLToPath(new URL("../../", import.meta.url));

function run(command: string, args: string[], cwd: string): string {
  const r = spawnSync(command, args, { cwd, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, `${command} ${args.join(" ")}:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

describe("package: the packed tarball installs into an empty project and works", () => {
  const { dir } = tempFiles("eplb-package-");
  const project = join(dir, "project");
  let tarball = "";

  before(() => {
    // --ignore-scripts: pack what `npm run build` made (the test runs after it), do not rebuild.
    const packed = JSON.parse(
      run("npm", ["pack", "--ignore-scripts", "--json", "--pack-destination", dir], root),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(dir, packed[0].filename);
    mkdirSync(project);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "user", version: "1.0.0", private: true, type: "module" }),
    );
    run(
      "npm",
      [
        "install",
        "--offline",
        "--no-audit",
        "--no-fund",
        "--ignore-scripts",
        "--cache",
        join(dir, "npm-cache"),
        tarball,
      ],
      project,
    );
  });

  test("the tarball holds the license, the changelog and the built entries, not the tests or source maps", () => {
    const listed = JSON.parse(
      run("npm", ["pack", "--ignore-scripts", "--dry-run", "--json"], root),
    ) as Array<{ files: Array<{ path: string }> }>;
    const paths = listed[0].files.map((f) => f.path);
    for (const file of [
      "LICENSE",
      "CHANGELOG.md",
      "README.md",
      "package.json",
      "dist/src/index.js",
      "dist/src/index.d.ts",
      "dist/src/blocks.js",
      "dist/src/report/index.js",
      "dist/src/node.js",
      "dist/src/cli/bin.js",
    ]) {
      assert.ok(paths.includes(file), file);
    }
    assert.deepEqual(
      // Source maps would point at src/, which is not shipped.
      paths.filter((p) => p.startsWith("dist/test") || p.startsWith("src/") || p.endsWith(".map")),
      [],
    );
  });

  test("ESM imports of eplb, eplb/node, eplb/blocks and eplb/report", () => {
    writeFileSync(
      join(project, "use.mjs"),
      `import { rebalanceExperts, toLoadMatrix, evaluatePlacement } from "eplb";
import { BalancedWorkspace, greedyPacking } from "eplb/blocks";
import { formatPlacement, readLoads } from "eplb/node";
import { buildReportModel, htmlReport } from "eplb/report";
const weight = [[90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
  [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27]];
const r = rebalanceExperts(weight, 16, 4, 2, 8, { policy: "deepseek" });
const loads = toLoadMatrix(weight);
const m = evaluatePlacement(loads, r.placement, r.topology);
const html = htmlReport(buildReportModel({ loads, placement: r.placement, numGpus: 8 }));
console.log(JSON.stringify({
  phy2log: r.phy2log[0],
  balancedness: m.balancedness > 0 && m.balancedness <= 1,
  blocks: typeof BalancedWorkspace === "function" && typeof greedyPacking === "function",
  node: typeof readLoads === "function" && typeof formatPlacement === "function",
  html: html.startsWith("<!doctype html>"),
}));
`,
    );
    const out = JSON.parse(run(process.execPath, ["use.mjs"], project));
    assert.deepEqual(out, {
      // DeepSeek's README example, reproduced slot for slot.
      phy2log: [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
      balancedness: true,
      blocks: true,
      node: true,
      html: true,
    });
  });

  test("the types: a strict TypeScript user compiles against the installed package", () => {
    writeFileSync(
      join(project, "check.ts"),
      `import { type RebalanceOptions, type RebalanceResult, rebalanceExperts } from "eplb";
import type { BalancedWorkspace } from "eplb/blocks";
import type { FileFormat } from "eplb/node";
import type { ReportModel } from "eplb/report";
const options: RebalanceOptions = { policy: "balanced", relaxedHierarchy: true, moveBudget: 0.1 };
const r: RebalanceResult = rebalanceExperts([[1, 2, 3, 4]], 4, 1, 1, 2, options);
const slots: number = r.placement.phy2log[0];
// @ts-expect-error a misspelt option is a compile error too
rebalanceExperts([[1, 2]], 2, 1, 1, 1, { epsilonn: 1e-3 });
export type Used = [BalancedWorkspace, FileFormat, ReportModel, typeof slots];
`,
    );
    const tsc = join(root, "node_modules/typescript/bin/tsc");
    run(
      process.execPath,
      [
        tsc,
        "--noEmit",
        "--strict",
        "--module",
        "nodenext",
        "--moduleResolution",
        "nodenext",
        "--target",
        "es2022",
        "--typeRoots",
        join(root, "node_modules/@types"),
        "--types",
        "node",
        "check.ts",
      ],
      project,
    );
  });

  test("the CLI: node_modules/.bin/eplb plan", () => {
    copyFileSync(join(root, "examples/loads.json"), join(project, "loads.json"));
    const bin = join(project, "node_modules/.bin/eplb");
    const version = run(bin, ["--version"], project).trim();
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { version: string };
    assert.equal(version, pkg.version);
    const out = JSON.parse(
      run(
        bin,
        "plan --loads loads.json --replicas 16 --groups 4 --nodes 2 --gpus 8 --policy deepseek".split(
          " ",
        ),
        project,
      ),
    ) as { phy2log: number[][] };
    assert.deepEqual(out.phy2log[0], [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1]);
  });
});
