import assert from "node:assert/strict";

/**
 * Asserts what a package entry exposes at run time: exactly `names` (sorted), and that the
 * package's own name resolves `specifier` (through package.json "exports") to the very module the
 * test imported from the source tree, so the published path and the tested file are one.
 *
 * @example
 * ```ts
 * await assertEntry(await import("../src/blocks.js"), "eplb/blocks", ["AssignmentWorkspace", ...]);
 * ```
 */
export async function assertEntry(
  entry: object,
  specifier: string,
  names: readonly string[],
): Promise<void> {
  const actual = Object.keys(entry).sort();
  const expected = [...names].sort();
  assert.deepEqual(
    {
      added: actual.filter((n) => !expected.includes(n)),
      removed: expected.filter((n) => !actual.includes(n)),
    },
    { added: [], removed: [] },
    `${specifier}: an export was added or removed; update this list only on purpose (public API)`,
  );
  for (const name of actual) {
    assert.notEqual((entry as Record<string, unknown>)[name], undefined, `${specifier}: ${name}`);
  }
  // Self-reference by package name: resolved through package.json "exports".
  const published = await import(specifier);
  assert.equal(published, entry, `${specifier} resolves to another file than the tested one`);
}
