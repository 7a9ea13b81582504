/**
 * src/cli/routing-flags.ts: `--routing` of plan, eval and report reads routing files for loads
 * already read, and refuses a routing that does not describe the same MoE layers.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { UsageError } from "../../src/cli/command.js";
import { ROUTING_HELP, readRoutingFlag, routingPaths } from "../../src/cli/routing-flags.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { repoRoot } from "../helpers/cli.js";

// 2 tokens, 1 layer, top-2 of 4 experts.
const fixtures = join(repoRoot, "test", "fixtures", "routing");

describe("routingPaths", () => {
  test("null without --routing; the paths in order with it", () => {
    assert.equal(routingPaths({}), null);
    assert.deepEqual(routingPaths({ routing: "a.npy" }), ["a.npy"]);
    assert.deepEqual(routingPaths({ routing: ["a.npy", "dumps/"] }), ["a.npy", "dumps/"]);
  });

  test("an empty value is refused", () => {
    for (const routing of ["", [], ["a.npy", ""]]) {
      assert.throws(
        () => routingPaths({ routing }),
        (e: unknown) => e instanceof UsageError && e.message === "--routing needs a file or folder",
      );
    }
  });
});

describe("readRoutingFlag", () => {
  test("reads the routing relative to the command's directory", () => {
    const r = readRoutingFlag({ routing: ["routing.npy"] }, fixtures, { layers: 1, experts: 4 });
    assert.deepEqual([r?.tokens, r?.layers, r?.k, r?.experts], [2, 1, 2, 4]);
    assert.equal(readRoutingFlag({}, fixtures, { layers: 1, experts: 4 }), null);
  });

  test("a routing of other layers than the loads is refused, naming both", () => {
    assert.throws(
      () => readRoutingFlag({ routing: ["routing.npy"] }, fixtures, { layers: 3, experts: 4 }),
      (e: unknown) =>
        e instanceof EplbFormatError &&
        e.message ===
          "routing.npy: routing has 1 layers, the loads 3: they must describe the same MoE layers",
    );
  });

  test("ids beyond the loads' experts are refused; a missing file is a usage error", () => {
    assert.throws(
      () => readRoutingFlag({ routing: ["routing.npy"] }, fixtures, { layers: 1, experts: 2 }),
      EplbFormatError,
    );
    assert.throws(
      () => readRoutingFlag({ routing: ["nope.npy"] }, fixtures, { layers: 1, experts: 4 }),
      (e: unknown) => e instanceof UsageError && /^cannot read nope\.npy/.test(e.message),
    );
  });

  test("the help says the limit and the formats", () => {
    assert.match(ROUTING_HELP, /^ {2}--routing FILE\|DIR$/m);
    assert.match(ROUTING_HELP, /at most \d+ ids/);
    assert.match(ROUTING_HELP, /\.npy integer/);
    assert.match(ROUTING_HELP, /SGLang per_token dumps/);
  });
});
