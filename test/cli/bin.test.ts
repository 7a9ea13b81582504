/** src/cli/bin.ts: the `eplb` executable binds runCli to the process: exit code, streams, pipes. */
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { readFileSync, statSync } from "node:fs";
import { describe, test } from "node:test";
import { packageVersion } from "../../src/cli/version.js";
import { binPath, repoRoot, spawnCli } from "../helpers/cli.js";

describe("the eplb executable", () => {
  test("is what package.json's bin names, runs on its own (shebang, executable bit)", () => {
    const pkg = JSON.parse(readFileSync(`${repoRoot}package.json`, "utf8")) as {
      bin: Record<string, string>;
    };
    assert.equal(pkg.bin.eplb, "./dist/src/cli/bin.js");
    assert.equal(statSync(binPath).mode & 0o111, 0o111, "executable by all");
    assert.ok(readFileSync(binPath, "utf8").startsWith("#!/usr/bin/env node\n"));
    const r = spawnSync(binPath, ["--version"], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `${packageVersion()}\n`);
  });

  test("exits with runCli's code: 0, then 2 for a mistake with one line and no stack", () => {
    assert.equal(spawnCli(["--help"]).code, 0);
    assert.equal(spawnCli([]).code, 2);
    const r = spawnCli(["plan", "--replicas", "x"]);
    assert.equal(r.code, 2);
    assert.equal(r.stdout, "");
    assert.match(r.stderr, /^eplb plan: [^\n]+\n$/);
    assert.doesNotMatch(r.stderr, /\bat .*\.js:\d+/);
  });

  test("a reader that closes stdout at once (eplb ... | head) ends quietly with exit 0", async () => {
    const child = spawn(process.execPath, [binPath, "--help"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout.destroy();
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    const code = await new Promise<number | null>((done) => child.on("close", done));
    assert.equal(stderr, "");
    assert.equal(code, 0);
  });
});
