import assert from "node:assert/strict";

/**
 * Asserts that `fn` refuses its input as the house rules say: an error of class `type` whose
 * one-line message equals `message` (a string) or matches it (a RegExp), and, given `parameter`,
 * whose `parameter` (EplbInputError's) names it.
 *
 * @example
 * ```ts
 * assertRefused(() => toLoadMatrix([[-1]]), EplbInputError, "weight[0][0] (-1) must be >= 0", "weight[0][0]");
 * ```
 */
export function assertRefused(
  fn: () => unknown,
  type: abstract new (...args: never[]) => Error,
  message: RegExp | string,
  parameter?: string,
): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${String(e)}`);
    if (typeof message === "string") assert.equal(e.message, message);
    else assert.match(e.message, message);
    assert.ok(!e.message.includes("\n"), `one line: ${e.message}`);
    if (parameter !== undefined) {
      assert.equal((e as Error & { parameter?: unknown }).parameter, parameter);
    }
    return true;
  });
}
