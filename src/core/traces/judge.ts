// The simulator's innermost loops: one step judged under a placement (balancedness, and with a
// cost model its MoE time in the same pass), and without EPLB.
import type { CostModel } from "../cost/model.js";

const NO_MASK = new Uint8Array(0);

/** The step's MoE time in µs, written by the judging loops when they price (one pass for both). */
export const stepUs = new Float64Array(1);

/**
 * `stepBalancedness` with precomputed slot cells: the simulator's innermost loop. With a cost
 * model it also prices the step into `stepUs[0]` (each layer's busiest GPU by time, as
 * `layerMoeUs`; `distinct` is `distinctSlotMask`, needed only with `expertLoadUs`), in the same
 * pass.
 *
 * @param loads the step's loads from `offset`, `[layers][experts]`
 * @param offset where the step starts
 * @param cells per slot, `layer * experts + expert`
 * @param shares per slot, `1 / replica count`
 * @param layers layers
 * @param numReplicas slots per layer
 * @param numGpus GPUs (slots `g * S .. g * S + S - 1` on GPU `g`)
 * @param distinct `distinctSlotMask` of the placement, or null
 * @param model the prices, or null to judge only
 * @returns the step's balancedness (mean / max GPU load, averaged over layers)
 * @example
 * ```ts
 * const m = makeCostModel({ expertBytes: 1, intraGbps: 1, interGbps: 1, tokenUs: 1000 });
 * judgeStep(new Float64Array([8, 2, 4]), 0, new Int32Array([0, 1, 0, 2]),
 *   new Float64Array([0.5, 1, 0.5, 1]), 1, 4, 2, null, m); // 0.875: GPU loads [6, 8]
 * stepUs[0]; // 8000
 * ```
 */
export function judgeStep(
  loads: Float64Array,
  offset: number,
  cells: Int32Array,
  shares: Float64Array,
  layers: number,
  numReplicas: number,
  numGpus: number,
  distinct: Uint8Array | null,
  model: CostModel | null,
): number {
  const S = numReplicas / numGpus;
  const tokenUs = model ? model.tokenUs : 0;
  const loadUs = model ? model.expertLoadUs : 0;
  const mask = distinct && loadUs > 0 ? distinct : NO_MASK;
  let sum = 0;
  let us = 0;
  let s = 0;
  for (let l = 0; l < layers; l++) {
    let max = 0;
    let total = 0;
    let maxUs = 0;
    for (let g = 0; g < numGpus; g++) {
      let gpu = 0;
      let active = 0;
      const end = s + S;
      if (mask.length === 0) for (; s < end; s++) gpu += loads[offset + cells[s]] * shares[s];
      else {
        for (; s < end; s++) {
          const v = loads[offset + cells[s]];
          gpu += v * shares[s];
          if (v > 0) active += mask[s];
        }
      }
      total += gpu;
      if (gpu > max) max = gpu;
      const t = tokenUs * gpu + loadUs * active;
      if (t > maxUs) maxUs = t;
    }
    sum += max > 0 ? total / numGpus / max : 1;
    us += maxUs;
  }
  stepUs[0] = us;
  return sum / layers;
}

/**
 * Balancedness of one step without EPLB: experts in order, GPU `g` holding a contiguous block;
 * with a cost model its MoE time into `stepUs[0]` (as `contiguousLayerMoeUs`), in the same pass.
 *
 * @param loads the step's loads from `offset`
 * @param offset where the step starts
 * @param layers layers
 * @param E experts per layer
 * @param numGpus GPUs
 * @param model the prices, or null to judge only
 * @returns the step's balancedness
 * @example
 * ```ts
 * contiguousStepBalancedness(new Float64Array([1, 3]), 0, 1, 2, 2, null); // 0.666...
 * ```
 */
export function contiguousStepBalancedness(
  loads: Float64Array,
  offset: number,
  layers: number,
  E: number,
  numGpus: number,
  model: CostModel | null,
): number {
  const tokenUs = model ? model.tokenUs : 0;
  const loadUs = model ? model.expertLoadUs : 0;
  let sum = 0;
  let us = 0;
  for (let l = 0; l < layers; l++) {
    const lo = offset + l * E;
    let max = 0;
    let total = 0;
    let maxUs = 0;
    for (let g = 0; g < numGpus; g++) {
      const from = Math.floor((g * E) / numGpus);
      const to = Math.floor(((g + 1) * E) / numGpus);
      let gpu = 0;
      let active = 0;
      if (loadUs > 0) {
        for (let e = from; e < to; e++) {
          const v = loads[lo + e];
          gpu += v;
          if (v > 0) active++;
        }
      } else for (let e = from; e < to; e++) gpu += loads[lo + e];
      total += gpu;
      if (gpu > max) max = gpu;
      const t = tokenUs * gpu + loadUs * active;
      if (t > maxUs) maxUs = t;
    }
    sum += max > 0 ? total / numGpus / max : 1;
    us += maxUs;
  }
  stepUs[0] = us;
  return sum / layers;
}
