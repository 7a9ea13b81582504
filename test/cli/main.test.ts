/** src/cli/main.ts: the dispatcher: help, version, unknown commands, and how errors end. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { UsageError } from "../../src/cli/command.js";
import { commands, internalErrorText, runCli } from "../../src/cli/main.js";
import { packageVersion } from "../../src/cli/version.js";
import { EplbInputError } from "../../src/core/model/errors.js";
import { cli, repoRoot } from "../helpers/cli.js";

const example = join(repoRoot, "examples", "loads.json");
const shape = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"];

/** Runs `fn` with a command `fail` that throws `error`, added to the dispatcher's list. */
async function withFailing(error: unknown, fn: () => Promise<void>): Promise<void> {
  commands.push({
    name: "fail",
    summary: "fails",
    help: "Usage: eplb fail\n",
    run: async () => {
      throw error;
    },
  });
  try {
    await fn();
  } finally {
    commands.pop();
  }
}

describe("runCli: help and version", () => {
  test("without a command: the help on stdout and exit 2 (nothing was done)", async () => {
    const r = await cli([]);
    assert.equal(r.code, 2);
    assert.equal(r.stderr, "");
    assert.match(r.stdout, /^Usage: eplb <command> \[options\]/);
  });

  test("--help, -h and help: exit 0, every command listed in order with its summary", async () => {
    for (const flag of ["--help", "-h", "help"]) {
      const r = await cli([flag]);
      assert.equal(r.code, 0, flag);
      assert.equal(r.stderr, "");
      const listed = [...r.stdout.matchAll(/^ {2}(\w+) +(.+)$/gm)].map((m) => [m[1], m[2]]);
      assert.deepEqual(
        listed.filter(([name]) => commands.some((c) => c.name === name)),
        commands.map((c) => [c.name, c.summary]),
      );
    }
    assert.deepEqual(
      commands.map((c) => c.name),
      ["plan", "eval", "convert", "report", "simulate", "synth"],
    );
  });

  test("-v and --version print the package version alone", async () => {
    for (const flag of ["-v", "--version"]) {
      const r = await cli([flag]);
      assert.deepEqual(r, { code: 0, stdout: `${packageVersion()}\n`, stderr: "" });
    }
  });

  test("a command's --help or -h, anywhere after it, prints its help and runs nothing", async () => {
    for (const c of commands) {
      const r = await cli([c.name, "--bogus-flag", "-h"]);
      assert.deepEqual(r, { code: 0, stdout: c.help, stderr: "" }, c.name);
    }
  });
});

describe("runCli: mistakes and bugs", () => {
  test("an unknown command: one line naming it and the commands, exit 2", async () => {
    const r = await cli(["paln", "--loads", example]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.equal(
      r.stderr,
      'eplb: unknown command "paln" (commands: plan, eval, convert, report, simulate, synth)\n',
    );
  });

  test("a user mistake (UsageError, EplbInputError): its first line after the command, exit 2", async () => {
    for (const error of [
      new UsageError("--x (1) must be 2\nmore detail"),
      new EplbInputError("numGpus", 3, "must divide 16"),
    ]) {
      await withFailing(error, async () => {
        const r = await cli(["fail"]);
        assert.equal(r.code, 2);
        assert.equal(r.stdout, "");
        assert.equal(r.stderr, `eplb fail: ${error.message.split("\n")[0]}\n`);
      });
    }
  });

  test("anything else is a bug: one line, exit 70, whatever was thrown", async () => {
    for (const [error, text] of [
      [new TypeError("x is undefined"), "x is undefined"],
      ["a string", "a string"],
      [undefined, "undefined"],
    ] as const) {
      await withFailing(error, async () => {
        const r = await cli(["fail"]);
        assert.equal(r.code, 70);
        assert.equal(
          r.stderr,
          `eplb fail: internal error: ${text}; EPLB_DEBUG=1 shows the stack\n`,
        );
      });
    }
  });
});

describe("internalErrorText", () => {
  test("one line of at most 300 characters of the message's first line", () => {
    const long = "x".repeat(1000);
    assert.equal(
      internalErrorText("eplb plan", new Error(`${long}\nsecond`)),
      `eplb plan: internal error: ${"x".repeat(300)}; EPLB_DEBUG=1 shows the stack\n`,
    );
    assert.equal(
      internalErrorText("eplb", 42),
      "eplb: internal error: 42; EPLB_DEBUG=1 shows the stack\n",
    );
  });
});

describe("the last line of defence (item 13)", () => {
  const failingContext = {
    stdout: () => {
      throw new Error("boom\nsecond line");
    },
    stderr: (t: string) => {
      errors += t;
    },
    stderrIsTTY: false,
    cwd: process.cwd(),
  };
  let errors = "";

  test("an unexpected error prints one line and exits 70", async () => {
    errors = "";
    const code = await runCli(["plan", "--loads", example, ...shape], failingContext);
    assert.equal(code, 70);
    assert.equal(errors, "eplb plan: internal error: boom; EPLB_DEBUG=1 shows the stack\n");
  });

  test("EPLB_DEBUG=1 adds the stack", async () => {
    errors = "";
    process.env.EPLB_DEBUG = "1";
    try {
      assert.equal(await runCli(["plan", "--loads", example, ...shape], failingContext), 70);
    } finally {
      delete process.env.EPLB_DEBUG;
    }
    assert.match(errors, /^eplb plan: internal error: boom\nError: boom\n.*\n\s+at /s);
  });
});
