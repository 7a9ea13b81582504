/**
 * src/cli/output.ts: every file the CLI writes goes through here, so it is written whole or not
 * at all, never through a link, never onto an input of the same run; and the summaries' number
 * formats.
 */
import assert from "node:assert/strict";
import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import type { CliContext } from "../../src/cli/command.js";
import { UsageError } from "../../src/cli/command.js";
import {
  checkOutputPaths,
  fixed3,
  fixed4,
  openOutputFile,
  percent2,
  round6,
  slotCount,
  textTable,
  writeOutputFile,
  writeResult,
} from "../../src/cli/output.js";
import { assertRefused } from "../helpers/refused.js";
import { tempFiles } from "../helpers/temp.js";

const { dir } = tempFiles("eplb-output-");
let n = 0;

/** A command's context in a fresh folder of its own. */
function context(): CliContext & { out: string[] } {
  const cwd = join(dir, String(n++));
  mkdirSync(cwd);
  const out: string[] = [];
  return {
    out,
    stdout: (t) => {
      out.push(t);
    },
    stderr: () => {},
    stderrIsTTY: false,
    cwd,
  };
}

const usage = (fn: () => unknown, message: RegExp) => assertRefused(fn, UsageError, message);

describe("writeResult", () => {
  test("text goes to stdout without --out, to the file with it", () => {
    const ctx = context();
    writeResult("{}\n", undefined, ctx);
    assert.deepEqual(ctx.out, ["{}\n"]);
    writeResult("[1]\n", "r.json", ctx);
    assert.equal(readFileSync(join(ctx.cwd, "r.json"), "utf8"), "[1]\n");
    assert.deepEqual(ctx.out, ["{}\n"]);
  });

  test("bytes need --out: a binary file on a terminal helps nobody", () => {
    const ctx = context();
    usage(
      () => writeResult(new Uint8Array([1, 2]), undefined, ctx),
      /^a binary result needs --out FILE$/,
    );
    assert.deepEqual(ctx.out, []);
    writeResult(new Uint8Array([1, 2]), "r.pt", ctx);
    assert.deepEqual([...readFileSync(join(ctx.cwd, "r.pt"))], [1, 2]);
  });
});

describe("writeOutputFile and openOutputFile", () => {
  test("replace a file whole, relative to the command's directory, leaving no temporary file", () => {
    const ctx = context();
    writeFileSync(join(ctx.cwd, "plan.json"), "old");
    writeOutputFile("plan.json", "new", ctx);
    assert.equal(readFileSync(join(ctx.cwd, "plan.json"), "utf8"), "new");
    assert.deepEqual(readdirSync(ctx.cwd), ["plan.json"]);
  });

  test("a symbolic link is refused, not written through", () => {
    const ctx = context();
    writeFileSync(join(ctx.cwd, "target.json"), "precious");
    symlinkSync("target.json", join(ctx.cwd, "link.json"));
    usage(() => writeOutputFile("link.json", "x", ctx), /^cannot write link\.json: /);
    assert.equal(readFileSync(join(ctx.cwd, "target.json"), "utf8"), "precious");
  });

  test("a folder that does not exist is one line naming the path", () => {
    const ctx = context();
    usage(
      () => writeOutputFile("no/such/plan.json", "x", ctx),
      /^cannot write no\/such\/plan\.json: /,
    );
    usage(() => openOutputFile("no/such/t.npy", ctx), /^cannot write no\/such\/t\.npy: /);
  });

  test("a streamed file appears only on commit; abort leaves the old one", () => {
    const ctx = context();
    const path = join(ctx.cwd, "steps.txt");
    writeFileSync(path, "old\n");
    const bytes = new TextEncoder().encode("step\n");
    const aborted = openOutputFile("steps.txt", ctx);
    aborted.write(bytes);
    aborted.abort();
    assert.equal(readFileSync(path, "utf8"), "old\n");
    assert.deepEqual(readdirSync(ctx.cwd), ["steps.txt"]);
    const f = openOutputFile("steps.txt", ctx);
    f.write(bytes);
    assert.equal(readFileSync(path, "utf8"), "old\n", "not in place before commit");
    f.write(bytes);
    f.commit();
    assert.equal(readFileSync(path, "utf8"), "step\nstep\n");
    assert.deepEqual(readdirSync(ctx.cwd), ["steps.txt"]);
  });
});

describe("checkOutputPaths", () => {
  test("an output that is an input of the run is refused, under any spelling or link", () => {
    const ctx = context();
    writeFileSync(join(ctx.cwd, "loads.json"), "[[1]]");
    symlinkSync("loads.json", join(ctx.cwd, "alias.json"));
    for (const out of ["loads.json", "./loads.json", "alias.json", join(ctx.cwd, "loads.json")]) {
      usage(
        () => checkOutputPaths({ loads: ["loads.json"], out }, ctx),
        new RegExp(
          `^--out ${out.replace(/[.]/g, "\\.")} is also --loads: eplb does not overwrite its inputs$`,
        ),
      );
    }
    usage(
      () => checkOutputPaths({ trace: "loads.json", html: "loads.json" }, ctx),
      /^--html loads\.json is also --trace/,
    );
  });

  test("two outputs may not share a file, even one that does not exist yet", () => {
    const ctx = context();
    usage(
      () => checkOutputPaths({ out: "a.json", transfers: "./a.json" }, ctx),
      /^--transfers \.\/a\.json is also --out: two outputs cannot share a file$/,
    );
  });

  test("distinct files, stdout (-) and devices pass", () => {
    const ctx = context();
    writeFileSync(join(ctx.cwd, "loads.json"), "[[1]]");
    checkOutputPaths(
      { loads: "loads.json", out: "plan.json", transfers: "t.json", html: "-" },
      ctx,
    );
    checkOutputPaths({ out: "/dev/null", html: "/dev/null" }, ctx);
    checkOutputPaths({ out: "-", transfers: "-" }, ctx);
  });
});

describe("number formats and tables", () => {
  test("fixed3, fixed4, percent2, slotCount and round6", () => {
    assert.equal(fixed3(0.93412), "0.934");
    assert.equal(fixed3(1), "1.000");
    assert.equal(fixed4(0.87655), "0.8766");
    assert.equal(percent2(0.14309), "14.31%");
    assert.equal(percent2(1), "100.00%");
    assert.equal(slotCount(2390), "2390");
    assert.equal(slotCount(2390.1666), "2390.2");
    assert.equal(round6(0.881656584695), 0.881657);
    assert.equal(round6(1234567.89), 1234570);
  });

  test("textTable pads each column to its widest cell, left-aligning the first columns", () => {
    assert.equal(
      textTable(
        ["name", "value"],
        [
          ["a", "1"],
          ["bb", "10"],
        ],
      ),
      "name  value\na         1\nbb       10",
    );
    assert.equal(
      textTable(["k", "policy", "n"], [["x", "deepseek", "3"]], 2),
      "k  policy    n\nx  deepseek  3",
    );
    // No trailing spaces on a line whose last cells are short.
    for (const line of textTable(["a", "b"], [["long text", ""]], 2).split("\n")) {
      assert.equal(line, line.trimEnd());
    }
  });
});
