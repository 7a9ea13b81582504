import { EplbInputError } from "./errors.js";

/**
 * The largest shape eplb plans, far above any engine's (DeepSeek-V3 runs 61 layers of 256
 * experts on 288 to 320 slots; the largest public MoE models have at most a few hundred experts
 * per layer). Beyond it a flag or a file is a typo or a hostile input, and planning it would take
 * minutes and gigabytes: it is refused in one line before anything is allocated. The readers, the
 * CLI flags and the library entry points all check against these numbers (docs/formats.md).
 */
export const MAX_SHAPE = {
  /** MoE layers. */
  layers: 4096,
  /** Logical experts per layer (also bounds numGroups). */
  experts: 65536,
  /** Physical slots per layer (numReplicas). */
  replicas: 65536,
  /** GPUs (also bounds numNodes). */
  gpus: 65536,
  /** Physical slots of all layers together (layers x replicas): 16 Mi. */
  slots: 16_777_216,
} as const;

/**
 * The largest total of a load matrix (or of one step of a trace): loads are token counts, and
 * beyond this a sum of loads or of their squares could overflow to Infinity and make every
 * figure NaN.
 */
export const MAX_LOAD_TOTAL = 1e150;

/** Names of the shape parameters, as the library spells them (the CLI passes its flag names). */
export interface ShapeNames {
  layers: string;
  experts: string;
  replicas: string;
  groups: string;
  nodes: string;
  gpus: string;
}

const LIBRARY_NAMES: ShapeNames = {
  layers: "layers",
  experts: "numExperts",
  replicas: "numReplicas",
  groups: "numGroups",
  nodes: "numNodes",
  gpus: "numGpus",
};

/**
 * Refuses a shape beyond {@link MAX_SHAPE}; absent entries are not checked. Only the sizes are
 * checked here (divisibility and the like stay with the topology rules).
 *
 * @param shape the sizes to check: layers, experts, replicas, groups, nodes, gpus
 * @param names how to name each parameter in the message (flag names for the CLI)
 * @throws EplbInputError naming the first size over its limit, the value and the limit
 * @example
 * ```ts
 * checkShapeLimits({ replicas: 288, gpus: 32 }); // ok
 * checkShapeLimits({ replicas: 1e9 });
 * // throws: numReplicas (1000000000) must be at most 65536 (the largest shape eplb plans)
 * ```
 */
export function checkShapeLimits(
  shape: Partial<Record<keyof ShapeNames, number>>,
  names: ShapeNames = LIBRARY_NAMES,
): void {
  const check = (key: keyof ShapeNames, value: number | undefined, max: number) => {
    if (value !== undefined && value > max) {
      throw new EplbInputError(
        names[key],
        value,
        `must be at most ${max} (the largest shape eplb plans)`,
      );
    }
  };
  check("layers", shape.layers, MAX_SHAPE.layers);
  check("experts", shape.experts, MAX_SHAPE.experts);
  check("replicas", shape.replicas, MAX_SHAPE.replicas);
  check("groups", shape.groups, MAX_SHAPE.experts);
  check("gpus", shape.gpus, MAX_SHAPE.gpus);
  check("nodes", shape.nodes, MAX_SHAPE.gpus);
  if (shape.layers !== undefined && shape.replicas !== undefined) {
    const slots = shape.layers * shape.replicas;
    if (slots > MAX_SHAPE.slots) {
      throw new EplbInputError(
        `${names.layers} x ${names.replicas}`,
        slots,
        `must be at most ${MAX_SHAPE.slots} slots in all (the largest shape eplb plans)`,
      );
    }
  }
}

/**
 * One line for help texts: the largest shape, as {@link MAX_SHAPE} says.
 *
 * @example
 * ```ts
 * shapeLimitsText(); // "up to 4096 layers, 65536 experts and 65536 slots per layer, ..."
 * ```
 */
export function shapeLimitsText(): string {
  return (
    `up to ${MAX_SHAPE.layers} layers, ${MAX_SHAPE.experts} experts and ${MAX_SHAPE.replicas} ` +
    `slots per layer, ${MAX_SHAPE.gpus} GPUs, ${MAX_SHAPE.slots} slots in all`
  );
}
