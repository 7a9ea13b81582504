import { EplbInputError } from "./errors.js";
import { checkShapeLimits, MAX_LOAD_TOTAL } from "./limits.js";

/**
 * Loads of every logical expert of every MoE layer, row-major: the load of expert `e` in layer `l`
 * is `data[l * experts + e]`.
 */
export interface LoadMatrix {
  readonly layers: number;
  readonly experts: number;
  readonly data: Float64Array;
}

/** What the API accepts as loads: nested arrays `[layers][experts]` or a {@link LoadMatrix}. */
export type LoadsInput = ReadonlyArray<ArrayLike<number>> | LoadMatrix;

function isLoadMatrix(input: unknown): input is LoadMatrix {
  return (
    typeof input === "object" &&
    input !== null &&
    !Array.isArray(input) &&
    "data" in input &&
    "layers" in input &&
    "experts" in input
  );
}

/**
 * Validates loads and returns them as a {@link LoadMatrix} (copying nested arrays; a valid
 * LoadMatrix is returned as is). Zero loads are valid; negative, NaN, infinite or non-numeric
 * loads, ragged or empty matrices are rejected with an {@link EplbInputError}.
 *
 * @example
 * ```ts
 * const m = toLoadMatrix([[1, 2, 3], [4, 5, 6]]);
 * // { layers: 2, experts: 3, data: Float64Array [1, 2, 3, 4, 5, 6] }
 * ```
 */
export function toLoadMatrix(input: LoadsInput, parameter = "weight"): LoadMatrix {
  if (isLoadMatrix(input)) {
    const { layers, experts, data } = input;
    if (!Number.isInteger(layers) || layers < 1) {
      throw new EplbInputError(`${parameter}.layers`, layers, "must be an integer >= 1");
    }
    if (!Number.isInteger(experts) || experts < 1) {
      throw new EplbInputError(`${parameter}.experts`, experts, "must be an integer >= 1");
    }
    if (!(data instanceof Float64Array)) {
      throw new EplbInputError(`${parameter}.data`, data, "must be a Float64Array");
    }
    if (data.length !== layers * experts) {
      throw new EplbInputError(
        `${parameter}.data.length`,
        data.length,
        `must equal layers * experts (${layers} * ${experts} = ${layers * experts})`,
      );
    }
    checkShapeLimits({ layers, experts }, shapeNames(parameter));
    // One pass, the total summed in the order checkLoadTotal sums it; a load that fails the
    // range test is handed to checkLoad, which names it. The length is read once: re-read per
    // load it made this loop 2.8 times slower (57 vs 20 us on DeepSeek-V3's loads).
    let total = 0;
    const n = data.length;
    for (let i = 0; i < n; i++) {
      const v = data[i];
      if (!(v >= 0 && v <= Number.MAX_VALUE)) {
        checkLoad(parameter, v, Math.floor(i / experts), i % experts);
      }
      total += v;
    }
    checkTotal(parameter, total);
    return input;
  }
  if (!Array.isArray(input)) {
    throw new EplbInputError(
      parameter,
      input,
      "must be a 2-D array [layers][experts] or a LoadMatrix",
    );
  }
  const layers = input.length;
  if (layers === 0) throw new EplbInputError(parameter, input, "must have at least one layer");
  const first = input[0];
  if (first === null || typeof first !== "object" || typeof first.length !== "number") {
    throw new EplbInputError(`${parameter}[0]`, first, "must be an array of expert loads");
  }
  const experts = first.length;
  if (experts === 0)
    throw new EplbInputError(`${parameter}[0]`, first, "must have at least one expert");
  checkShapeLimits({ layers, experts }, shapeNames(parameter));
  const data = new Float64Array(layers * experts);
  for (let l = 0; l < layers; l++) {
    const row = input[l];
    if (row === null || typeof row !== "object" || typeof row.length !== "number") {
      throw new EplbInputError(`${parameter}[${l}]`, row, "must be an array of expert loads");
    }
    if (row.length !== experts) {
      throw new EplbInputError(
        `${parameter}[${l}].length`,
        row.length,
        `must equal the length of ${parameter}[0] (${experts}); the matrix is ragged`,
      );
    }
    for (let e = 0; e < experts; e++) {
      const v = row[e];
      checkLoad(parameter, v, l, e);
      data[l * experts + e] = v as number;
    }
  }
  checkLoadTotal(parameter, data);
  return { layers, experts, data };
}

function shapeNames(parameter: string) {
  return {
    layers: `${parameter} layers`,
    experts: `${parameter} experts`,
    replicas: "numReplicas",
    groups: "numGroups",
    nodes: "numNodes",
    gpus: "numGpus",
  };
}

/**
 * Refuses loads whose total is beyond {@link MAX_LOAD_TOTAL}: each load may be finite while
 * their sum is Infinity, and every balancedness figure would then be NaN.
 *
 * @param parameter the loads' name for the message
 * @param data the loads, already checked finite and >= 0
 * @throws EplbInputError when the total exceeds the limit
 * @example
 * ```ts
 * checkLoadTotal("weight", new Float64Array([1e308, 1e308])); // throws: sum of weight (Infinity) must be at most 1e+150 (larger loads overflow ...)
 * ```
 */
export function checkLoadTotal(parameter: string, data: ArrayLike<number>): void {
  let total = 0;
  for (let i = 0; i < data.length; i++) total += data[i];
  checkTotal(parameter, total);
}

function checkTotal(parameter: string, total: number): void {
  if (!(total <= MAX_LOAD_TOTAL)) {
    throw new EplbInputError(
      `sum of ${parameter}`,
      total,
      `must be at most ${MAX_LOAD_TOTAL} (larger loads overflow the balance figures)`,
    );
  }
}

function checkLoad(parameter: string, v: unknown, l: number, e: number): void {
  if (typeof v !== "number") {
    throw new EplbInputError(`${parameter}[${l}][${e}]`, v, "must be a number");
  }
  if (!Number.isFinite(v)) {
    throw new EplbInputError(`${parameter}[${l}][${e}]`, v, "must be finite");
  }
  if (v < 0) throw new EplbInputError(`${parameter}[${l}][${e}]`, v, "must be >= 0");
}

/**
 * Nested-array copy of a {@link LoadMatrix}, for JSON and reference-shaped output.
 *
 * @example
 * ```ts
 * matrixToArrays({ layers: 1, experts: 2, data: new Float64Array([3, 4]) }); // [[3, 4]]
 * ```
 */
export function matrixToArrays(m: LoadMatrix): number[][] {
  const out: number[][] = new Array(m.layers);
  for (let l = 0; l < m.layers; l++) {
    out[l] = Array.from(m.data.subarray(l * m.experts, (l + 1) * m.experts));
  }
  return out;
}
