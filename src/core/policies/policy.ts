import type { LayerPlanner } from "../blocks/layers.js";
import type { LoadMatrix } from "../model/matrix.js";
import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";

/**
 * Options of {@link rebalanceExperts} that reach a policy. Policies read the fields they know and
 * ignore the rest, so a new option is a new field, not a new signature.
 */
export interface PolicyOptions {
  /** Name of the policy to run (see `policyNames()`). */
  policy?: string;
  [option: string]: unknown;
}

/**
 * A planning policy: loads and a validated topology in, a complete placement out. Each policy is
 * one module over the shared building blocks (packing, replication).
 */
export interface Policy {
  readonly name: string;
  /** One line for `--help` and docs. */
  readonly description: string;
  plan(loads: LoadMatrix, topology: Topology, options: PolicyOptions): Placement;
  /**
   * The policy one layer at a time: a planner with its own workspace, which `planLayers` runs
   * over a model's layers, or over a worker's share of them (layers are independent, so any
   * split gives the same plan as `plan`). Absent for a policy that plans across layers.
   */
  layerPlanner?(topology: Topology, options: PolicyOptions): LayerPlanner;
}
