import type { TransferKind } from "../evaluation/transfers.js";
import { EplbInputError } from "../model/errors.js";

/**
 * The prices eplb turns plans and rebalances into milliseconds with. Every field is a documented
 * parameter (docs/cost.md gives the presets and their sources); nothing here is measured.
 */
export interface CostModel {
  /** Bytes of one expert's weights in one layer: what one transfer copies. */
  readonly expertBytes: number;
  /** Per-GPU bandwidth to another GPU of the same node, in Gb/s (1e9 bits per second). */
  readonly intraGbps: number;
  /** Per-GPU bandwidth to a GPU of another node, in Gb/s. */
  readonly interGbps: number;
  /**
   * GPU time per (token, expert) pair in microseconds: a layer's MoE time in a step is `tokenUs`
   * times the busiest GPU's load (plus the {@link expertLoadUs} term).
   */
  readonly tokenUs: number;
  /**
   * Microseconds per distinct activated expert on a GPU in a step (memory-bound decode streams
   * each activated expert's weights once); 0 leaves the term out.
   */
  readonly expertLoadUs: number;
}

/** What {@link makeCostModel} takes: `expertLoadUs` defaults to 0. */
export interface CostModelParams {
  expertBytes: number;
  intraGbps: number;
  interGbps: number;
  tokenUs: number;
  expertLoadUs?: number;
}

function requirePositive(parameter: string, value: unknown, allowZero: boolean): number {
  const ok =
    typeof value === "number" && Number.isFinite(value) && (allowZero ? value >= 0 : value > 0);
  if (!ok) {
    throw new EplbInputError(
      parameter,
      value,
      allowZero ? "must be a finite number >= 0" : "must be a finite number > 0",
    );
  }
  return value as number;
}

/**
 * Validates cost parameters once at the boundary, so pricing code can trust them.
 *
 * @param params bytes per expert, link bandwidths (Gb/s per GPU), compute prices (µs)
 * @returns a frozen {@link CostModel}
 * @throws {EplbInputError} when a bandwidth or `expertBytes` is not > 0, or a time is negative
 *
 * @example
 * ```ts
 * const m = makeCostModel({ expertBytes: 44e6, intraGbps: 1600, interGbps: 400, tokenUs: 0.05 });
 * m.expertLoadUs; // 0
 * makeCostModel({ expertBytes: 44e6, intraGbps: 0, interGbps: 400, tokenUs: 0.05 });
 * // throws EplbInputError: intraGbps (0) must be a finite number > 0
 * ```
 */
export function makeCostModel(params: CostModelParams): CostModel {
  return Object.freeze({
    expertBytes: requirePositive("expertBytes", params.expertBytes, false),
    intraGbps: requirePositive("intraGbps", params.intraGbps, false),
    interGbps: requirePositive("interGbps", params.interGbps, false),
    tokenUs: requirePositive("tokenUs", params.tokenUs, true),
    expertLoadUs: requirePositive("expertLoadUs", params.expertLoadUs ?? 0, true),
  });
}

/**
 * Milliseconds one expert copy of a given kind takes on an otherwise idle link: `expertBytes * 8`
 * bits over the link's Gb/s. A `local` copy (another slot of the same GPU) goes through HBM at
 * terabytes per second and is priced 0: it needs no round of the schedule.
 *
 * @param model the cost model
 * @param kind the transfer's kind
 * @returns the copy's time in milliseconds
 *
 * @example
 * ```ts
 * const m = makeCostModel({ expertBytes: 50e6, intraGbps: 1600, interGbps: 400, tokenUs: 0 });
 * copyMs(m, "interNode"); // 1: 400 Mbit over 400 Gb/s
 * copyMs(m, "intraNode"); // 0.25
 * copyMs(m, "local"); // 0
 * ```
 */
export function copyMs(model: CostModel, kind: TransferKind): number {
  if (kind === "local") return 0;
  const gbps = kind === "intraNode" ? model.intraGbps : model.interGbps;
  return ((model.expertBytes * 8) / (gbps * 1e9)) * 1e3;
}
