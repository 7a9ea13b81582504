// A plain transcription of the dispatch rule of docs/locality.md, for tests only: slow and
// obvious, so the library's kernels and the placement's figures can be checked against it.
import type { Placement } from "../../src/core/model/placement.js";
import type { Routing } from "../../src/core/routing/routing.js";

/**
 * Mean over (token, layer) of the remote nodes a token is sent to: from its rank's node when
 * known, else the mean over every source node; experts with a replica on the source node are
 * served there, the rest by greedy cover (the node holding most of them, lowest index on ties).
 */
export function referenceRemoteNodes(
  routing: Routing,
  placement: Placement,
  numGpus: number,
  numNodes: number,
): { overall: number; perLayer: number[] } {
  const { tokens, layers, k, topk, rank } = routing;
  const P = placement.numReplicas;
  const gpusPerNode = numGpus / numNodes;
  const slotsPerNode = P / numNodes;
  const perLayer: number[] = [];
  let sum = 0;
  for (let l = 0; l < layers; l++) {
    const nodesOf: Set<number>[] = [];
    for (let e = 0; e < placement.numExperts; e++) nodesOf.push(new Set());
    for (let s = 0; s < P; s++)
      nodesOf[placement.phy2log[l * P + s]].add(Math.floor(s / slotsPerNode));
    let layerSum = 0;
    for (let t = 0; t < tokens; t++) {
      const experts = new Set<number>();
      for (let j = 0; j < k; j++) {
        const e = topk[(t * layers + l) * k + j];
        if (e >= 0) experts.add(e);
      }
      const sources = rank ? [Math.floor(rank[t] / gpusPerNode)] : [...Array(numNodes).keys()];
      let tokenSum = 0;
      for (const src of sources) {
        let left = [...experts].filter((e) => !nodesOf[e].has(src));
        let remote = 0;
        while (left.length > 0) {
          let best = -1;
          let bestCount = 0;
          for (let n = 0; n < numNodes; n++) {
            const c = left.filter((e) => nodesOf[e].has(n)).length;
            if (c > bestCount) {
              bestCount = c;
              best = n;
            }
          }
          remote++;
          left = left.filter((e) => !nodesOf[e].has(best));
        }
        tokenSum += remote;
      }
      layerSum += tokenSum / sources.length;
    }
    perLayer.push(tokens > 0 ? layerSum / tokens : 0);
    sum += layerSum;
  }
  return { overall: tokens * layers > 0 ? sum / (tokens * layers) : 0, perLayer };
}
