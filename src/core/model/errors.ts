/**
 * The one error type the library throws for a caller's mistake.
 *
 * Its message always names the parameter, the offending value and the rule it breaks, so a CLI
 * can print it on one line and a user can fix the input without reading code.
 *
 * @example
 * ```ts
 * try {
 *   rebalanceExperts([[1, 2]], 3, 1, 1, 2);
 * } catch (error) {
 *   if (error instanceof EplbInputError) console.log(error.message);
 *   // numGpus (2) must divide numReplicas (3)
 * }
 * ```
 */
export class EplbInputError extends Error {
  /** The parameter (or input path such as `weight[2][5]`) that is wrong. */
  readonly parameter: string;
  /** The value the caller gave. */
  readonly value: unknown;
  /** The rule the value breaks, phrased to follow `parameter (value)`. */
  readonly rule: string;

  constructor(parameter: string, value: unknown, rule: string) {
    super(`${parameter} (${formatValue(value)}) ${rule}`);
    this.name = "EplbInputError";
    this.parameter = parameter;
    this.value = value;
    this.rule = rule;
  }
}

/** Short, single-line rendering of a value for error messages. */
export function formatValue(value: unknown): string {
  if (typeof value === "string")
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") {
    return String(value);
  }
  if (value === null) return "null";
  if (value === undefined) return "undefined";
  if (Array.isArray(value)) return `array of length ${value.length}`;
  if (ArrayBuffer.isView(value)) return `${value.constructor.name}`;
  return typeof value;
}

/**
 * Throws unless `value` is an integer >= `min`.
 *
 * @example
 * ```ts
 * requireInteger("numGpus", 0, 1); // throws: numGpus (0) must be an integer >= 1
 * ```
 */
export function requireInteger(parameter: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw new EplbInputError(parameter, value, `must be an integer >= ${min}`);
  }
  return value;
}
