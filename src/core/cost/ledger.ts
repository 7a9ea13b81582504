// What the simulator books per strategy when it prices a replay: the MoE time of every judged
// step and the stall of every rebalance, summed into the figures `eplb simulate` reports.
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import type { CostModel } from "./model.js";
import { rebalanceMs } from "./price.js";

/** A strategy's replay priced in milliseconds (present only when the simulation has a cost model). */
export interface StrategyCost {
  /** Mean over judged steps of the step's MoE time (its layers' busiest-GPU times summed). */
  moeMsPerStep: number;
  /** Mean over rebalances after the first (which deploys the first plan) of the transfers' stall; 0 for no balancing. */
  transferMsPerRebalance: number;
  /** `judgedSteps * moeMsPerStep + (rebalances - 1) * transferMsPerRebalance`: rebalances stall serving. */
  totalMs: number;
  /** MoE time of every judged step (empty when the simulation keeps no series). */
  stepMs: Float64Array;
  /** Stall of each rebalance (the first is 0: initial deployment). */
  transferMs: Float64Array;
  /** eplb with the cost gate: rebalances after the first that it skipped whole. */
  skippedRebalances?: number;
  /** eplb with the cost gate: layers it kept on their previous placement although the policy changed them. */
  skippedLayers?: number;
}

/**
 * Books one strategy's times during a replay: {@link step} per judged step (the simulator's
 * judging loop computes the time), {@link rebalance} per rebalance. The first rebalance deploys
 * the first plan and is free: a replay's total is its steps' MoE time plus the later stalls.
 * @example
 * ```ts
 * const model = makeCostModel({ expertBytes: 1, intraGbps: 1, interGbps: 1, tokenUs: 1 });
 * const ledger = new CostLedger(model, makeTopology(3, 4, 1, 2, 2), 2);
 * const first = placementFromPhy2log([[0, 1, 2, 0]], 3);
 * ledger.rebalance(null, first); // the first deployment: no stall
 * ledger.step(1500, true); // 1.5 ms of MoE time
 * ledger.rebalance(first, placementFromPhy2log([[0, 2, 1, 0]], 3), 4); // stall scheduled: 4 ms
 * ledger.step(2500, true);
 * ledger.result(false); // { moeMsPerStep: 2, transferMsPerRebalance: 4, totalMs: 8, ... }
 * ```
 */
export class CostLedger {
  private sumMs = 0;
  private judged = 0;
  private readonly stepMs: Float64Array;
  private readonly stalls: number[] = [];
  skippedRebalances = 0;
  skippedLayers = 0;

  /**
   * @param model the prices
   * @param topology the cluster transfers run on
   * @param seriesLength judged steps whose time to keep (0: none)
   */
  constructor(
    readonly model: CostModel,
    private readonly topology: Topology,
    seriesLength: number,
  ) {
    this.stepMs = new Float64Array(seriesLength);
  }

  /** One judged step's MoE time in microseconds. */
  step(us: number, keep: boolean): void {
    const ms = us / 1e3;
    if (keep) this.stepMs[this.judged] = ms;
    this.sumMs += ms;
    this.judged++;
  }

  /**
   * A rebalance from `previous` (null: the first deployment, free) to `next`; `stallMs` when
   * the caller has already scheduled its transfers (the gate has).
   */
  rebalance(previous: Placement | null, next: Placement, stallMs?: number): void {
    if (!previous) this.stalls.push(0);
    else this.stalls.push(stallMs ?? rebalanceMs(previous, next, this.topology, this.model));
  }

  /** A rebalance that moves nothing (no balancing). */
  idle(): void {
    this.stalls.push(0);
  }

  /** The figures, with the gate's counts when `gated`. */
  result(gated: boolean): StrategyCost {
    const later = this.stalls.slice(1);
    const stallMs = later.reduce((a, b) => a + b, 0);
    const out: StrategyCost = {
      moeMsPerStep: this.judged ? this.sumMs / this.judged : 0,
      transferMsPerRebalance: later.length ? stallMs / later.length : 0,
      totalMs: this.sumMs + stallMs,
      stepMs: this.stepMs,
      transferMs: Float64Array.from(this.stalls),
    };
    if (gated) {
      out.skippedRebalances = this.skippedRebalances;
      out.skippedLayers = this.skippedLayers;
    }
    return out;
  }
}
