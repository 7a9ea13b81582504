// Model and hardware presets for the cost model: public figures, each with its source in
// docs/cost.md, so `--model deepseek-v3 --hardware h800` prices a rebalance without measuring.

import { EplbInputError } from "../model/errors.js";

/** How a model stores its routed experts' weights. */
export interface WeightFormat {
  /** Bytes per weight (1 for FP8, 2 for BF16). */
  readonly bytesPerWeight: number;
  /**
   * Block-wise quantisation: one scale per `blockRows x blockCols` block of each matrix
   * (partial blocks at the edges count whole), `scaleBytes` each; absent for unscaled formats.
   */
  readonly blockScales?: {
    readonly blockRows: number;
    readonly blockCols: number;
    readonly scaleBytes: number;
  };
  /** The dense-compute precision its expert GEMMs run at, picking the GPU's peak. */
  readonly precision: "fp8" | "bf16";
}

/** A MoE model's routed-expert shape, from its public Hugging Face `config.json`. */
export interface ModelPreset {
  readonly name: string;
  /** `hidden_size`. */
  readonly hidden: number;
  /** `moe_intermediate_size`: each routed expert's FFN width. */
  readonly intermediate: number;
  readonly weights: WeightFormat;
  /** Where the figures come from. */
  readonly source: string;
}

/** An 8-GPU node type: links per GPU, dense peaks and memory bandwidth, nominal datasheet figures. */
export interface HardwarePreset {
  readonly name: string;
  readonly gpusPerNode: number;
  /** Per-GPU NVLink bandwidth per direction, Gb/s (half the datasheet's bidirectional figure). */
  readonly intraGbps: number;
  /** Per-GPU NIC bandwidth per direction, Gb/s (one 400 Gb/s NIC per GPU). */
  readonly interGbps: number;
  /** Dense (no sparsity) tensor-core peak, FLOP/s, per precision. */
  readonly peakFlops: { readonly fp8: number; readonly bf16: number };
  /** HBM bandwidth, bytes/s. */
  readonly hbmBytesPerSecond: number;
  readonly source: string;
}

const FP8_BLOCK_128: WeightFormat = {
  bytesPerWeight: 1,
  blockScales: { blockRows: 128, blockCols: 128, scaleBytes: 4 },
  precision: "fp8",
};

const DEEPSEEK_V3: ModelPreset = {
  name: "deepseek-v3",
  hidden: 7168,
  intermediate: 2048,
  weights: FP8_BLOCK_128,
  source:
    "https://huggingface.co/deepseek-ai/DeepSeek-V3/blob/main/config.json (hidden_size 7168, moe_intermediate_size 2048, quantization_config fp8 e4m3, weight_block_size [128, 128]); float32 weight_scale_inv per block: README_WEIGHTS.md of github.com/deepseek-ai/DeepSeek-V3",
};

/** The models `--model` knows, by name (`deepseek-r1` shares DeepSeek-V3's architecture). */
export const MODEL_PRESETS: Readonly<Record<string, ModelPreset>> = Object.freeze({
  "deepseek-v3": DEEPSEEK_V3,
  "deepseek-r1": {
    ...DEEPSEEK_V3,
    name: "deepseek-r1",
    source: DEEPSEEK_V3.source.replace("DeepSeek-V3/blob", "DeepSeek-R1/blob"),
  },
  "kimi-k2": {
    name: "kimi-k2",
    hidden: 7168,
    intermediate: 2048,
    weights: FP8_BLOCK_128,
    source:
      "https://huggingface.co/moonshotai/Kimi-K2-Instruct/blob/main/config.json (hidden_size 7168, moe_intermediate_size 2048, quantization_config fp8 e4m3, weight_block_size [128, 128]; DeepSeek-V3's format)",
  },
  "qwen3-235b-a22b": {
    name: "qwen3-235b-a22b",
    hidden: 4096,
    intermediate: 1536,
    weights: { bytesPerWeight: 2, precision: "bf16" },
    source:
      "https://huggingface.co/Qwen/Qwen3-235B-A22B/blob/main/config.json (hidden_size 4096, moe_intermediate_size 1536, torch_dtype bfloat16)",
  },
});

const NVIDIA_H100 =
  "https://www.nvidia.com/en-us/data-center/h100/ (H100 SXM: FP8 3,958 TFLOPS and BF16 1,979 TFLOPS with sparsity, half without; 3.35 TB/s; NVLink 900 GB/s)";

/** The node types `--hardware` knows: 8 GPUs, one 400 Gb/s NIC per GPU, nominal figures. */
export const HARDWARE_PRESETS: Readonly<Record<string, HardwarePreset>> = Object.freeze({
  h100: {
    name: "h100",
    gpusPerNode: 8,
    intraGbps: 3600,
    interGbps: 400,
    peakFlops: { fp8: 1979e12, bf16: 989e12 },
    hbmBytesPerSecond: 3.35e12,
    source: NVIDIA_H100,
  },
  h800: {
    name: "h800",
    gpusPerNode: 8,
    intraGbps: 1600,
    interGbps: 400,
    peakFlops: { fp8: 1979e12, bf16: 989e12 },
    hbmBytesPerSecond: 3.35e12,
    source:
      "NVIDIA H800 SXM5 datasheet (H100's compute and 3.35 TB/s HBM3, NVLink 400 GB/s); DeepSeek-V3 technical report, arXiv 2412.19437, section 3.2.2 (NVLink 160 GB/s, IB 50 GB/s); DeepEP docs/legacy.md (H800 ~160 GB/s NVLink, CX7 400 Gb/s ~50 GB/s RDMA achieved)",
  },
  h200: {
    name: "h200",
    gpusPerNode: 8,
    intraGbps: 3600,
    interGbps: 400,
    peakFlops: { fp8: 1979e12, bf16: 989e12 },
    hbmBytesPerSecond: 4.8e12,
    source:
      "https://www.nvidia.com/en-us/data-center/h200/ (H200 SXM: H100's tensor-core peaks, 4.8 TB/s HBM3e, NVLink 900 GB/s)",
  },
});

/**
 * The fraction of the GPU's dense peak an expert GEMM is assumed to reach when {@link tokenUsOf}
 * derives `tokenUs`: grouped MoE GEMMs on skewed, small per-expert batches run well below peak
 * (a stated guess, not a measurement: give `--token-us` when you have one).
 */
export const MOE_GEMM_EFFICIENCY = 0.5;

function lookup<T>(table: Readonly<Record<string, T>>, parameter: string, name: string): T {
  if (!Object.hasOwn(table, name)) {
    throw new EplbInputError(
      parameter,
      name,
      `is not a known preset; known: ${Object.keys(table).join(", ")}`,
    );
  }
  return table[name];
}

/**
 * A model preset by name.
 *
 * @param name one of {@link MODEL_PRESETS}' keys
 * @returns the preset
 * @throws {EplbInputError} naming the known presets when `name` is not one
 * @example
 * ```ts
 * modelPreset("kimi-k2").intermediate; // 2048
 * modelPreset("llama"); // throws EplbInputError: model ("llama") is not a known preset; known: deepseek-v3, ...
 * ```
 */
export function modelPreset(name: string): ModelPreset {
  return lookup(MODEL_PRESETS, "model", name);
}

/**
 * A hardware preset by name.
 *
 * @param name one of {@link HARDWARE_PRESETS}' keys
 * @returns the preset
 * @throws {EplbInputError} naming the known presets when `name` is not one
 * @example
 * ```ts
 * hardwarePreset("h800").intraGbps; // 1600
 * hardwarePreset("a100"); // throws EplbInputError: hardware ("a100") is not a known preset; known: h100, h800, h200
 * ```
 */
export function hardwarePreset(name: string): HardwarePreset {
  return lookup(HARDWARE_PRESETS, "hardware", name);
}

/**
 * Bytes of one routed expert of one layer, what one transfer copies: three matrices (gate, up
 * and down projections) of `hidden x intermediate` weights, `3 * hidden * intermediate *
 * bytesPerWeight`, plus, for block-scaled formats, one scale per block of each matrix:
 * `3 * ceil(hidden / blockRows) * ceil(intermediate / blockCols) * scaleBytes`.
 *
 * @param model a {@link ModelPreset} (or any routed-expert shape)
 * @returns bytes per expert
 * @example
 * ```ts
 * expertBytesOf(modelPreset("deepseek-v3")); // 44050944
 * expertBytesOf(modelPreset("qwen3-235b-a22b")); // 37748736
 * ```
 */
export function expertBytesOf(model: ModelPreset): number {
  const { hidden, intermediate, weights } = model;
  let bytes = 3 * hidden * intermediate * weights.bytesPerWeight;
  const scales = weights.blockScales;
  if (scales) {
    const blocks =
      Math.ceil(hidden / scales.blockRows) * Math.ceil(intermediate / scales.blockCols);
    bytes += 3 * blocks * scales.scaleBytes;
  }
  return bytes;
}

/**
 * GPU time per (token, expert) pair in microseconds, from FLOPs: `2 * 3 * hidden * intermediate`
 * FLOPs (three GEMMs, a multiply and an add per weight) over the GPU's dense peak at the model's
 * precision times `efficiency`.
 *
 * @param model the model preset
 * @param hardware the hardware preset
 * @param efficiency the fraction of peak reached (default {@link MOE_GEMM_EFFICIENCY})
 * @returns microseconds per (token, expert) pair
 * @throws {EplbInputError} when `efficiency` is not in (0, 1]
 * @example
 * ```ts
 * tokenUsOf(modelPreset("deepseek-v3"), hardwarePreset("h800")); // 0.0890...
 * ```
 */
export function tokenUsOf(
  model: ModelPreset,
  hardware: HardwarePreset,
  efficiency = MOE_GEMM_EFFICIENCY,
): number {
  if (!(efficiency > 0 && efficiency <= 1)) {
    throw new EplbInputError("efficiency", efficiency, "must be in (0, 1]");
  }
  const flops = 2 * 3 * model.hidden * model.intermediate;
  return (flops / (hardware.peakFlops[model.weights.precision] * efficiency)) * 1e6;
}

/**
 * Decode's price per distinct activated expert on a GPU in a step, in microseconds: the time to
 * stream the expert's weights once from HBM, `expertBytes / hbmBytesPerSecond` (memory-bound
 * decode reads every activated expert whole, however few tokens it serves).
 *
 * @param expertBytes bytes per expert
 * @param hardware the hardware preset
 * @returns microseconds per activated expert
 * @example
 * ```ts
 * expertLoadUsOf(44050944, hardwarePreset("h800")); // 13.149...
 * ```
 */
export function expertLoadUsOf(expertBytes: number, hardware: HardwarePreset): number {
  return (expertBytes / hardware.hbmBytesPerSecond) * 1e6;
}
