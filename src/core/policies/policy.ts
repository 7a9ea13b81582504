import type { LayerPlanner } from "../blocks/layers.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";

/**
 * The fields every policy's `plan` receives besides its own: the options object of
 * {@link rebalanceExperts} is passed whole, so a policy reads the fields it declares and ignores
 * the others (migration options, `previous`, ...).
 */
export interface PolicyOptions {
  /** Name of the policy to run (see `policyNames()`). */
  policy?: string;
}

/**
 * A planning policy: loads and a validated topology in, a complete placement out. Each policy is
 * one module over the shared building blocks (packing, replication).
 *
 * `O` is the policy's own options (e.g. `BalancedOptions`); `options` names their fields so that
 * {@link rebalanceExperts} refuses a misspelt one instead of ignoring it.
 */
export interface Policy<O extends object = object> {
  readonly name: string;
  /** One line for `--help` and docs. */
  readonly description: string;
  /** The fields of `O` the policy reads (default none). Any other unknown field is refused. */
  readonly options?: readonly string[];
  plan(loads: LoadMatrix, topology: Topology, options: O & PolicyOptions): Placement;
  /**
   * The policy one layer at a time: a planner with its own workspace, which `planLayers` runs
   * over a model's layers, or over a worker's share of them (layers are independent, so any
   * split gives the same plan as `plan`). Absent for a policy that plans across layers.
   */
  layerPlanner?(topology: Topology, options: O & PolicyOptions): LayerPlanner;
}
