/**
 * src/io/yaml.ts: the YAML subset of placement configs (TensorRT-LLM's MoE load balancer file)
 * is read as PyYAML's safe_load (the loader TensorRT-LLM uses) reads it, and anything outside
 * the subset, or read differently by the two, is refused naming the line and the rule.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import { EplbFormatError } from "../../src/io/errors.js";
import { readYaml } from "../../src/io/yaml.js";
import { assertRefused } from "../helpers/refused.js";
import { formatError } from "./support.js";

const text = (s: string) => new TextEncoder().encode(s);

describe("YAML subset", () => {
  const yaml = (s: string) => readYaml(text(s), "c.yaml");

  test("TensorRT-LLM config: flow lists, block lists, wrapped flow lists, comments", () => {
    const v = yaml(
      [
        "# MoE load balancer",
        "num_slots: 4  # slots per layer",
        "layer_updates_per_iter: 0",
        "initial_global_assignments:",
        "  3: [0, 1, 2, 0]",
        "  4:",
        "  - 1",
        "  - 0",
        "  - 2",
        "  - 1",
        "  5: [2, 1,",
        "    0, 2]",
        "",
      ].join("\n"),
    );
    assert.deepEqual(v, {
      num_slots: 4,
      layer_updates_per_iter: 0,
      initial_global_assignments: { 3: [0, 1, 2, 0], 4: [1, 0, 2, 1], 5: [2, 1, 0, 2] },
    });
  });

  test("flow mappings, scalars and quoting", () => {
    assert.deepEqual(
      yaml(
        "a: {0: [1, 2], 1: [3]}\nb: 'it''s'\nc: \"x\\ty\"\nd: ~\ne: true\nf: 1.5e3\ng: plain text\n",
      ),
      {
        a: { 0: [1, 2], 1: [3] },
        b: "it's",
        c: "x\ty",
        d: null,
        e: true,
        f: 1500,
        g: "plain text",
      },
    );
    assert.deepEqual(yaml("---\n- 1\n- [2, 3]\n"), [1, [2, 3]]);
    assert.deepEqual(yaml("key:\n  nested:\n    deep: 1\n"), { key: { nested: { deep: 1 } } });
    assert.equal(yaml("# only a comment\n"), null);
  });

  test("refused YAML", () => {
    const cases: [string, RegExp][] = [
      ["a: &x 1\nb: *x\n", /anchor, alias, tag/],
      ["a: !!python/object:os.system x\n", /anchor, alias, tag/],
      ["a: |\n  text\n", /block scalar/],
      ["a: 1\n---\nb: 2\n", /several YAML documents/],
      ["a: [1, 2\n", /unterminated flow/],
      ["a: 1\n   b: 2\n", /unexpected indentation/],
      ["a:\n\t- 1\n", /tabs/],
      ["- a: 1\n", /mappings inside list items/],
      ["a: {b 1}\n", /expected ':'/],
      ["a: [1 2] 3\n", /unexpected text after a flow/],
      [
        `${"a:\n ".repeat(1)}${Array.from({ length: 40 }, (_, i) => `${" ".repeat(i + 1)}k${i}:`).join("\n")}\n`,
        /nested too deeply/,
      ],
      [`a: ${"[".repeat(50)}${"]".repeat(50)}\n`, /nested too deeply/],
    ];
    for (const [src, pattern] of cases) {
      assert.throws(() => yaml(src), formatError(pattern), src);
    }
  });
});

describe("readYaml agrees with PyYAML", () => {
  // Made by test/fixtures/io/make_yaml_cases.py with yaml.safe_load (PyYAML 6.0).
  const cases = JSON.parse(
    readFileSync(
      fileURLToPath(new URL("../../../test/fixtures/io/yaml-cases.json", import.meta.url)),
      "utf8",
    ),
  ) as { yaml: string; expected: unknown }[];

  test("on what yaml.safe_dump writes for TensorRT-LLM configs and on hand-written files", () => {
    assert.ok(cases.length >= 9);
    for (const { yaml, expected } of cases) {
      assert.deepEqual(readYaml(text(yaml), "c.yaml"), expected, yaml);
    }
  });
});

describe("readYaml: where YAML 1.1 and a plain reading differ", () => {
  test("a leading zero is refused: PyYAML reads 010 as octal 8 (regression: read as 10)", () => {
    for (const [src, shown] of [
      ["a: [010, 2]\n", "010"],
      ["a: 09\n", "09"],
      ["a: -07\n", "-07"],
      ["010: [1]\n", "010"],
    ]) {
      assertRefused(
        () => readYaml(text(src), "lb.yaml"),
        EplbFormatError,
        `lb.yaml: YAML line 1: integer "${shown}" has a leading zero, which PyYAML reads as octal (or as a string); write it without the zero`,
      );
    }
    assert.deepEqual(readYaml(text("a: [0, -0, +0, 10, 0.5]\n"), "lb.yaml"), {
      a: [0, -0, 0, 10, 0.5],
    });
  });
});

describe("readYaml: structure and refusals by line", () => {
  const yaml = (s: string) => readYaml(text(s), "c.yaml");
  const refused = (s: string, message: string) =>
    assertRefused(() => yaml(s), EplbFormatError, message);

  test("a BOM, CRLF, a `--- value` document and the `...` end marker", () => {
    assert.deepEqual(yaml("\ufeffa: 1\r\nb: [2]\r\n"), { a: 1, b: [2] });
    assert.deepEqual(yaml("--- [1, 2]\n"), [1, 2]);
    assert.deepEqual(yaml("a: 1\n...\nthis is ignored: [\n"), { a: 1 });
    assert.equal(yaml(""), null);
    assert.deepEqual(yaml("a: 'x # not a comment'\n"), { a: "x # not a comment" });
    assert.deepEqual(yaml("a: x#y\n"), { a: "x#y" });
  });

  test("keys become strings, and a key given twice is refused (PyYAML would keep the last)", () => {
    assert.deepEqual(Object.keys(yaml("3: a\nnull: b\ntrue: c\n") as object), [
      "3",
      "null",
      "true",
    ]);
    refused("a: 1\nb: 2\na: 3\n", 'c.yaml: YAML line 3: key "a" appears twice');
    refused("a: {x: 1, x: 2}\n", 'c.yaml: YAML line 1: key "x" appears twice');
  });

  test("each refusal names the file, the line and the rule", () => {
    refused("a:\n\t- 1\n", "c.yaml: YAML line 2: tabs are not allowed for indentation");
    refused("a: 1\n- 2\n", "c.yaml: YAML line 2: a list item where a key was expected");
    refused("a: 1\njust text\n", "c.yaml: YAML line 2: expected 'key: value', found \"just text\"");
    refused("a: 'open\n", "c.yaml: YAML line 1: unterminated quoted string");
    refused('a: "\\q"\n', 'c.yaml: YAML line 1: invalid double-quoted string "\\"\\\\q\\""');
    refused("a: [1, 2\n", "c.yaml: YAML line 1: unterminated flow collection");
    refused("a: [1, 2 3\n", "c.yaml: YAML line 1: unterminated flow collection");
    // Nested block lists are outside the subset (PyYAML's safe_dump writes them only for lists
    // of lists, which no placement config holds): refused, not misread.
    refused("a:\n- - 1\n  - 2\n", "c.yaml: YAML line 3: unexpected indentation");
    refused("a: {b: 1; c: 2}\n", "c.yaml: YAML line 1: expected ',' or '}' in a flow mapping");
    refused(
      "a: 9007199254740993\n",
      'c.yaml: YAML line 1: integer "9007199254740993" is beyond +-2^53 and cannot be represented exactly',
    );
  });
});
