/**
 * Balance figures as each serving engine computes and logs them, from GPU loads
 * `[layers][numGpus]` (row-major, e.g. from `gpuLoads`). The engines disagree on the definition,
 * so a user comparing our numbers with their engine's log needs the engine's own formula.
 *
 * Where an engine would divide by zero (a layer with no load at all), the engine's code either
 * guards it (vLLM: 0, SGLang: the 1e-5 terms give 1) or would produce NaN (TensorRT-LLM,
 * vllm-ascend); for the latter we report the perfectly balanced value (imbalance 0,
 * peak/average 1) so JSON output stays numeric.
 */

import { EplbInputError, requireInteger } from "../model/errors.js";

/** vLLM's `balancedness` (`vllm/distributed/eplb/eplb_state.py`). */
export interface VllmBalance {
  /** Sum over layers of the mean GPU load, divided by the sum over layers of the max GPU load. */
  balancedness: number;
  /** Sum over layers of the mean GPU load (vLLM's `avg_tokens`). */
  avgTokens: number;
  /** Sum over layers of the max GPU load (vLLM's `max_tokens`). */
  maxTokens: number;
}

/** SGLang's utilisation rate (`python/sglang/srt/eplb/expert_distribution.py`). */
export interface SglangBalance {
  /** Mean over layers of `(avg + 1e-5) / (max + 1e-5)`. */
  balancedness: number;
  /** Per layer: `(avg + 1e-5) / (max + 1e-5)`. */
  perLayer: number[];
}

/** TensorRT-LLM's imbalance ratio (`examples/wide_ep/ep_load_balancer`). */
export interface TrtllmBalance {
  /** Mean over layers of `(max - mean) / mean`; 0 is perfect. */
  imbalance: number;
  /** The worst layer's imbalance. */
  worstImbalance: number;
  /** Per layer: `(max - mean) / mean`. */
  perLayer: number[];
}

/** vllm-ascend's peak-to-average ratio. */
export interface VllmAscendBalance {
  /** Mean over layers of `max / mean`; 1 is perfect. */
  peakOverAverage: number;
  /** The worst layer's `max / mean`. */
  worstPeakOverAverage: number;
  /** Per layer: `max / mean`. */
  perLayer: number[];
}

/** Every engine's balance figure for the same GPU loads. */
export interface EngineBalance {
  vllm: VllmBalance;
  sglang: SglangBalance;
  trtllm: TrtllmBalance;
  vllmAscend: VllmAscendBalance;
}

/** SGLang's smoothing term, which keeps an all-zero layer at 1 instead of 0/0. */
const SGLANG_EPSILON = 1e-5;

function checkShape(gpu: Float64Array, layers: number, numGpus: number): void {
  requireInteger("layers", layers, 1);
  requireInteger("numGpus", numGpus, 1);
  if (gpu.length !== layers * numGpus) {
    throw new EplbInputError(
      "gpu.length",
      gpu.length,
      `must equal layers * numGpus (${layers} * ${numGpus} = ${layers * numGpus})`,
    );
  }
}

/** Per-layer mean and max GPU load into the given arrays. */
function layerMeanMax(
  gpu: Float64Array,
  layers: number,
  numGpus: number,
  mean: Float64Array,
  max: Float64Array,
): void {
  for (let l = 0; l < layers; l++) {
    let total = 0;
    let m = 0;
    const base = l * numGpus;
    for (let g = 0; g < numGpus; g++) {
      const v = gpu[base + g];
      total += v;
      if (v > m) m = v;
    }
    mean[l] = total / numGpus;
    max[l] = m;
  }
}

/**
 * One ratio of each layer's mean and max GPU load, with its mean and largest over layers: the
 * shape of the SGLang, TensorRT-LLM and vllm-ascend metrics.
 */
function perLayerRatio(
  gpu: Float64Array,
  layers: number,
  numGpus: number,
  ratio: (mean: number, max: number) => number,
): { perLayer: number[]; mean: number; worst: number } {
  checkShape(gpu, layers, numGpus);
  const mean = new Float64Array(layers);
  const max = new Float64Array(layers);
  layerMeanMax(gpu, layers, numGpus, mean, max);
  const perLayer: number[] = new Array(layers);
  let sum = 0;
  let worst = 0;
  for (let l = 0; l < layers; l++) {
    const r = ratio(mean[l], max[l]);
    perLayer[l] = r;
    sum += r;
    if (r > worst) worst = r;
  }
  return { perLayer, mean: sum / layers, worst };
}

/**
 * vLLM's balancedness: `sum_l mean_g(load) / sum_l max_g(load)`, 0 when every layer is empty
 * (vLLM's guard). Layers weigh by their load, unlike the per-layer average the reference uses.
 *
 * @example
 * ```ts
 * vllmBalance(new Float64Array([6, 2, 1, 1]), 2, 2);
 * // { balancedness: 0.714..., avgTokens: 5, maxTokens: 7 }  ((4 + 1) / (6 + 1))
 * ```
 */
export function vllmBalance(gpu: Float64Array, layers: number, numGpus: number): VllmBalance {
  checkShape(gpu, layers, numGpus);
  const mean = new Float64Array(layers);
  const max = new Float64Array(layers);
  layerMeanMax(gpu, layers, numGpus, mean, max);
  let avgTokens = 0;
  let maxTokens = 0;
  for (let l = 0; l < layers; l++) {
    avgTokens += mean[l];
    maxTokens += max[l];
  }
  return { balancedness: maxTokens > 0 ? avgTokens / maxTokens : 0, avgTokens, maxTokens };
}

/**
 * SGLang's balancedness: per layer `(avg + 1e-5) / (max + 1e-5)`, averaged over layers.
 *
 * @example
 * ```ts
 * sglangBalance(new Float64Array([6, 2, 1, 1]), 2, 2);
 * // { balancedness: 0.833..., perLayer: [0.666..., 1] }
 * ```
 */
export function sglangBalance(gpu: Float64Array, layers: number, numGpus: number): SglangBalance {
  const r = perLayerRatio(
    gpu,
    layers,
    numGpus,
    (mean, max) => (mean + SGLANG_EPSILON) / (max + SGLANG_EPSILON),
  );
  return { balancedness: r.mean, perLayer: r.perLayer };
}

/**
 * TensorRT-LLM's imbalance ratio: per layer `(max - mean) / mean` (how much more the hottest
 * GPU receives than the average), mean and worst over layers. An empty layer counts as 0.
 *
 * @example
 * ```ts
 * trtllmBalance(new Float64Array([6, 2, 1, 1]), 2, 2);
 * // { imbalance: 0.25, worstImbalance: 0.5, perLayer: [0.5, 0] }
 * ```
 */
export function trtllmBalance(gpu: Float64Array, layers: number, numGpus: number): TrtllmBalance {
  const r = perLayerRatio(gpu, layers, numGpus, (mean, max) =>
    mean > 0 ? (max - mean) / mean : 0,
  );
  return { imbalance: r.mean, worstImbalance: r.worst, perLayer: r.perLayer };
}

/**
 * vllm-ascend's peak-to-average ratio: per layer `max / mean`, mean and worst (largest) over
 * layers. An empty layer counts as 1.
 *
 * @example
 * ```ts
 * vllmAscendBalance(new Float64Array([6, 2, 1, 1]), 2, 2);
 * // { peakOverAverage: 1.25, worstPeakOverAverage: 1.5, perLayer: [1.5, 1] }
 * ```
 */
export function vllmAscendBalance(
  gpu: Float64Array,
  layers: number,
  numGpus: number,
): VllmAscendBalance {
  const r = perLayerRatio(gpu, layers, numGpus, (mean, max) => (mean > 0 ? max / mean : 1));
  return { peakOverAverage: r.mean, worstPeakOverAverage: r.worst, perLayer: r.perLayer };
}

/**
 * All four engines' balance figures for GPU loads `[layers][numGpus]`.
 *
 * @example
 * ```ts
 * const b = engineBalance(new Float64Array([6, 2, 1, 1]), 2, 2);
 * // b.vllm.balancedness 0.714..., b.sglang.balancedness 0.833...,
 * // b.trtllm.imbalance 0.25, b.vllmAscend.peakOverAverage 1.25
 * ```
 */
export function engineBalance(gpu: Float64Array, layers: number, numGpus: number): EngineBalance {
  return {
    vllm: vllmBalance(gpu, layers, numGpus),
    sglang: sglangBalance(gpu, layers, numGpus),
    trtllm: trtllmBalance(gpu, layers, numGpus),
    vllmAscend: vllmAscendBalance(gpu, layers, numGpus),
  };
}

/**
 * SGLang's balancedness over recorded forward passes, as its recorder logs it
 * (`_UtilizationRateAccumulatorMixin` in `python/sglang/srt/eplb/expert_distribution.py`): per
 * pass, the physical counts of all ranks summed (`global_physical_count`), slots summed per GPU
 * in contiguous blocks (`compute_gpu_physical_count`), `(mean + 1e-5) / (max + 1e-5)` per layer
 * averaged over layers (`compute_utilization_rate`, `current_pass_balancedness`); then averaged
 * over the passes, as its `last_N_average_balancedness` averages the last N.
 *
 * @param physical per-pass physical counts `[passes][layers][slots]`, row-major
 * @param passes number of passes
 * @param layers MoE layers
 * @param slots physical slots per layer; a multiple of `numGpus`
 * @param numGpus SGLang's `ep_size`
 * @returns the mean over passes and each pass's value
 * @throws EplbInputError when slots is not a multiple of numGpus or the length is wrong
 * @example
 * ```ts
 * sglangPassBalance(new Float64Array([3, 1, 2, 2]), 2, 1, 2, 2);
 * // { balancedness: 0.833..., perPass: [0.666..., 1] }
 * ```
 */
export function sglangPassBalance(
  physical: Float64Array,
  passes: number,
  layers: number,
  slots: number,
  numGpus: number,
): { balancedness: number; perPass: number[] } {
  requireInteger("numGpus", numGpus, 1);
  if (slots % numGpus !== 0) {
    throw new EplbInputError("numGpus", numGpus, `must divide the ${slots} recorded slots`);
  }
  if (physical.length !== passes * layers * slots) {
    throw new EplbInputError(
      "physical.length",
      physical.length,
      `must equal passes * layers * slots (${passes} * ${layers} * ${slots})`,
    );
  }
  const perGpu = slots / numGpus;
  const gpu = new Float64Array(layers * numGpus);
  const perPass: number[] = [];
  let sum = 0;
  for (let t = 0; t < passes; t++) {
    gpu.fill(0);
    for (let l = 0; l < layers; l++) {
      const base = (t * layers + l) * slots;
      for (let s = 0; s < slots; s++)
        gpu[l * numGpus + Math.floor(s / perGpu)] += physical[base + s];
    }
    const b = sglangBalance(gpu, layers, numGpus).balancedness;
    perPass.push(b);
    sum += b;
  }
  return { balancedness: passes > 0 ? sum / passes : Number.NaN, perPass };
}
