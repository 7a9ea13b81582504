/**
 * The flag parser every command shares (src/cli/args.ts): what a user types reaches the command
 * as the value meant, and every mistake is a one-line UsageError naming the flag and the rule.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  checkTopologyFlagLimits,
  integerFlag,
  numberFlag,
  parseFlags,
  requireString,
  TOPOLOGY_HELP,
  TOPOLOGY_OPTIONS,
  topologyFlags,
} from "../../src/cli/args.js";
import { UsageError } from "../../src/cli/command.js";
import { EplbInputError } from "../../src/index.js";
import { assertRefused } from "../helpers/refused.js";

const usage = (fn: () => unknown, message: RegExp) => assertRefused(fn, UsageError, message);

const options = {
  ...TOPOLOGY_OPTIONS,
  loads: { type: "string" },
  sweep: { type: "string", multiple: true },
  json: { type: "boolean" },
} as const;

describe("parseFlags", () => {
  test("reads strings, booleans, repeated flags and --flag=value", () => {
    const flags = parseFlags(
      "plan",
      ["--gpus", "8", "--json", "--sweep", "interval=10", "--sweep=window=5", "--loads=-x.json"],
      options,
    );
    assert.deepEqual(
      { ...flags },
      { gpus: "8", json: true, sweep: ["interval=10", "window=5"], loads: "-x.json" },
    );
  });

  test("an unknown flag names itself and the command's help", () => {
    usage(
      () => parseFlags("plan", ["--gpu", "8"], options),
      /^unknown option --gpu \(see eplb plan --help\)$/,
    );
  });

  test("a positional argument is refused, not ignored", () => {
    usage(
      () => parseFlags("simulate", ["--gpus", "8", "trace.npy"], options),
      /^unexpected argument "trace.npy" \(see eplb simulate --help\)$/,
    );
  });

  test("a single-valued flag given twice is refused (parseArgs would keep the last)", () => {
    usage(
      () => parseFlags("plan", ["--replicas", "8", "--replicas", "16"], options),
      /^--replicas is given twice; give it once/,
    );
    // A flag declared `multiple` is meant to repeat.
    assert.deepEqual(parseFlags("plan", ["--sweep", "a", "--sweep", "b"], options).sweep, [
      "a",
      "b",
    ]);
  });

  test("a value with stray spaces is refused", () => {
    usage(() => parseFlags("plan", ["--gpus", " 8"], options), /^--gpus \(" 8"\) has stray spaces/);
  });

  test("a value that starts with '-' must be written --flag=-VALUE", () => {
    usage(
      () => parseFlags("plan", ["--loads", "-x.json"], options),
      /--loads needs a value; to give one that starts with "-", write --loads=-VALUE/,
    );
  });

  test("a string flag without its value is refused", () => {
    usage(() => parseFlags("plan", ["--gpus"], options), /gpus.*\(see eplb plan --help\)$/);
  });
});

describe("requireString, integerFlag, numberFlag", () => {
  test("requireString returns the value and refuses a missing or empty one", () => {
    assert.equal(requireString({ loads: "a.json" }, "loads"), "a.json");
    usage(() => requireString({}, "loads"), /^--loads is required$/);
    usage(() => requireString({ loads: "" }, "loads"), /^--loads is required$/);
  });

  test("integerFlag reads integers >= min, falls back only when the flag is absent", () => {
    assert.equal(integerFlag({ gpus: "8" }, "gpus", 1), 8);
    assert.equal(integerFlag({ gpus: "-3" }, "gpus", -5), -3);
    assert.equal(integerFlag({}, "nodes", 1, 1), 1);
    usage(() => integerFlag({}, "gpus", 1), /^--gpus is required$/);
    for (const bad of ["8x", "8.0", "1e3", "", "0x10", "0"]) {
      usage(
        () => integerFlag({ gpus: bad }, "gpus", 1),
        new RegExp(`^--gpus \\(${JSON.stringify(bad)}\\) must be an integer >= 1$`),
      );
    }
    usage(
      () => integerFlag({ gpus: true }, "gpus", 1),
      /^--gpus \(true\) must be an integer >= 1$/,
    );
  });

  test("integerFlag refuses an integer it cannot hold exactly instead of rounding it", () => {
    assert.equal(integerFlag({ n: "9007199254740991" }, "n", 0), 2 ** 53 - 1);
    usage(
      () => integerFlag({ n: "9007199254740993" }, "n", 0),
      /is beyond 2\^53 and cannot be exact/,
    );
  });

  test("numberFlag reads finite numbers in [min, max], or the fallback when absent", () => {
    assert.equal(numberFlag({ "min-gain": "0.01" }, "min-gain", 0, 1, 0), 0.01);
    assert.equal(numberFlag({ "min-gain": "1" }, "min-gain", 0, 1, 0), 1);
    assert.equal(numberFlag({}, "min-gain", 0, 1, 0.5), 0.5);
    for (const bad of ["1.5", "-0.1", "NaN", "Infinity", "", " 0.1", "abc"]) {
      usage(
        () => numberFlag({ "min-gain": bad }, "min-gain", 0, 1, 0),
        /^--min-gain \(.*\) must be a number in \[0, 1\]$/,
      );
    }
  });
});

describe("topology flags", () => {
  test("groups and nodes default to 1; replicas and gpus are required", () => {
    assert.deepEqual(topologyFlags({ replicas: "16", gpus: "8" }), {
      numReplicas: 16,
      numGroups: 1,
      numNodes: 1,
      numGpus: 8,
    });
    usage(() => topologyFlags({ gpus: "8" }), /^--replicas is required$/);
    usage(() => topologyFlags({ replicas: "16" }), /^--gpus is required$/);
  });

  test("a size beyond the largest shape is refused under its flag's name", () => {
    for (const [flag, key] of [
      ["replicas", "numReplicas"],
      ["gpus", "numGpus"],
      ["groups", "numGroups"],
      ["nodes", "numNodes"],
    ] as const) {
      assert.throws(
        () => checkTopologyFlagLimits({ [key]: 1e9 }),
        (e: unknown) =>
          e instanceof EplbInputError &&
          e.message ===
            `--${flag} (1000000000) must be at most 65536 (the largest shape eplb plans)`,
      );
    }
    assert.doesNotThrow(() => checkTopologyFlagLimits({ numReplicas: 65536, numGpus: 65536 }));
    assert.throws(() => topologyFlags({ replicas: "70000", gpus: "8" }), /--replicas \(70000\)/);
  });

  test("the help names the four flags and fits in 100 columns", () => {
    for (const flag of ["--replicas", "--groups", "--nodes", "--gpus"]) {
      assert.match(TOPOLOGY_HELP, new RegExp(`^  ${flag} N`, "m"));
    }
    for (const line of TOPOLOGY_HELP.split("\n")) assert.ok(line.length <= 100, line);
    assert.match(TOPOLOGY_HELP, /largest shape planned/);
  });
});
