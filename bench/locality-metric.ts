import type { Placement } from "../src/core/model/placement.js";
import type { Routing } from "../src/core/routing/routing.js";
import { referenceRemoteNodes } from "../test/helpers/dispatch-reference.js";

export function remoteNodesPerToken(r: Routing, p: Placement, gpus: number, nodes: number): number {
  return referenceRemoteNodes(r, p, gpus, nodes).overall;
}
