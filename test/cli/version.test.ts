/** src/cli/version.ts: `eplb --version` and the report's generator line say the package's version. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { packageVersion } from "../../src/cli/version.js";

test("packageVersion is package.json's version, found from the built file", () => {
  const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8"));
  assert.equal(pkg.name, "eplb");
  assert.equal(packageVersion(), pkg.version);
  assert.match(packageVersion(), /^\d+\.\d+\.\d+/);
});
