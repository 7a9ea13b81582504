import { EplbInputError } from "../model/errors.js";
import type { Placement } from "../model/placement.js";
import type { ClusterShape } from "../model/topology.js";
import type { Routing } from "./routing.js";

/**
 * What a placement costs in all-to-all dispatch under the rule of docs/locality.md: a token is
 * sent once to each remote node serving one of its experts (DeepEP's internode dispatch: one
 * RDMA copy per node, forwarded over NVLink inside it).
 */
export interface DispatchStats {
  /**
   * Mean over (token, layer) of remote nodes the token is sent to, over the pairs where the
   * token names an expert (a pair of only `-1` is not dispatched: a dense layer, or a row the
   * recorder never wrote).
   */
  readonly remoteNodesPerToken: number;
  /** Per layer: mean over its tokens that name an expert of remote nodes (0 when none does). */
  readonly perLayer: Float64Array;
  /** Share of (token, expert) choices served on a node other than the token's source node. */
  readonly crossNodeShare: number;
  /**
   * `traffic[src * numNodes + dst]`: token copies sent from node src to node dst (src != dst),
   * summed over tokens and layers (fractional when the source node is unknown).
   */
  readonly traffic: Float64Array;
  readonly numNodes: number;
  readonly tokens: number;
  /** (token, layer, choice) entries that name an expert (not -1): the denominator of `crossNodeShare`. */
  readonly choices: number;
  /** (token, layer) pairs that name an expert: the pairs `remoteNodesPerToken` averages over. */
  readonly routedTokens: number;
}

/** 32-bit words per expert in a {@link nodeMasks} row: one bit per node. */
export function maskWords(numNodes: number): number {
  return (numNodes + 31) >>> 5;
}

/**
 * Which nodes hold a replica of each expert in one layer: bit `n` of
 * `masks[e * maskWords(numNodes) + (n >>> 5)]` (bit `n & 31`) is set when node `n` holds expert
 * `e`. Any number of nodes works (several words per expert past 32). Empty slots (-1) hold
 * nothing.
 *
 * @param placement the placement (slots GPU-major, GPUs node-major)
 * @param layer the layer, `0 .. placement.layers - 1`
 * @param topology `numGpus` and `numNodes` (default 1)
 * @param out a buffer of `numExperts * maskWords(numNodes)` words to fill (allocated when absent)
 * @returns the masks, `out` when given
 * @throws {EplbInputError} when the GPUs do not divide the slots or the nodes the GPUs, or
 *   `out` is too short
 * @example
 * ```ts
 * const p = placementFromPhy2log([[0, 1, 2, 0]], 3); // 2 nodes x 1 GPU x 2 slots
 * nodeMasks(p, 0, { numGpus: 2, numNodes: 2 }); // Uint32Array [3, 1, 2]
 * ```
 */
export function nodeMasks(
  placement: Placement,
  layer: number,
  topology: ClusterShape,
  out?: Uint32Array,
): Uint32Array {
  const { numGpus, numNodes = 1 } = topology;
  const P = placement.numReplicas;
  if (P % numGpus !== 0) {
    throw new EplbInputError("numGpus", numGpus, `must divide the placement's slots (${P})`);
  }
  if (numGpus % numNodes !== 0) {
    throw new EplbInputError("numNodes", numNodes, `must divide numGpus (${numGpus})`);
  }
  const words = maskWords(numNodes);
  const size = placement.numExperts * words;
  const masks = out ?? new Uint32Array(size);
  if (masks.length < size) {
    throw new EplbInputError("out.length", masks.length, `must be at least ${size}`);
  }
  masks.fill(0, 0, size);
  const slotsPerNode = P / numNodes;
  const row = layer * P;
  for (let s = 0; s < P; s++) {
    const e = placement.phy2log[row + s];
    if (e < 0) continue;
    const n = Math.floor(s / slotsPerNode);
    masks[e * words + (n >>> 5)] |= 1 << (n & 31);
  }
  return masks;
}

/** Scratch buffers of {@link tokenRemoteNodes}, sized for `k` choices and `numNodes` nodes. */
export interface DispatchWorkspace {
  readonly k: number;
  readonly numNodes: number;
  /** Choices not yet served. */
  readonly pending: Int32Array;
  /** Per node: pending choices it holds. */
  readonly hits: Int32Array;
  /**
   * The remote nodes chosen for the last token (ascending when every pending expert lives on
   * one node, else in the order greedy picked them); `picked` of them are set.
   */
  readonly nodes: Int32Array;
  /** How many entries of `nodes` the last call set; how many choices it served remotely. */
  picked: number;
  remoteChoices: number;
}

/**
 * Buffers for {@link tokenRemoteNodes}: allocate once, reuse for every token.
 *
 * @param k choices per token and layer
 * @param numNodes nodes of the cluster
 * @returns the workspace
 * @example
 * ```ts
 * createDispatchWorkspace(8, 4).nodes.length; // 4
 * ```
 */
export function createDispatchWorkspace(k: number, numNodes: number): DispatchWorkspace {
  return {
    k,
    numNodes,
    pending: new Int32Array(k),
    hits: new Int32Array(numNodes),
    nodes: new Int32Array(numNodes),
    picked: 0,
    remoteChoices: 0,
  };
}

/**
 * The per-token kernel of the dispatch rule: how many remote nodes one token sent from node
 * `source` reaches in one layer. Choices with a replica on `source` are served there; the rest
 * by a greedy set cover over the other nodes (the node holding most of the choices still
 * pending first; ties to the lowest node index), each node chosen once. `-1` choices are
 * ignored. The chosen nodes are left in `ws.nodes[0 .. ws.picked - 1]` and the choices served
 * remotely in `ws.remoteChoices`.
 *
 * @param topk the choices, `topk[at .. at + k - 1]`
 * @param at offset of the token's choices in `topk`
 * @param masks the layer's {@link nodeMasks}
 * @param source the node the token comes from
 * @param ws a workspace from {@link createDispatchWorkspace} (its `k` and `numNodes` are used)
 * @returns the number of remote nodes
 * @throws {EplbInputError} when a choice names an expert no node holds
 * @example
 * ```ts
 * // 3 nodes; expert 0 on node 0, expert 1 on nodes 1 and 2, expert 2 on node 2
 * const masks = new Uint32Array([1, 6, 4]);
 * const ws = createDispatchWorkspace(3, 3);
 * tokenRemoteNodes(new Int32Array([0, 1, 2]), 0, masks, 0, ws); // 1 (node 2 holds both)
 * ```
 */
export function tokenRemoteNodes(
  topk: Int32Array,
  at: number,
  masks: Uint32Array,
  source: number,
  ws: DispatchWorkspace,
): number {
  const { k, numNodes, pending, hits, nodes } = ws;
  const words = maskWords(numNodes);
  const sw = source >>> 5;
  const sb = 1 << (source & 31);
  let n = 0;
  for (let j = 0; j < k; j++) {
    const e = topk[at + j];
    if (e < 0) continue;
    if ((masks[e * words + sw] & sb) === 0) pending[n++] = e;
  }
  ws.remoteChoices = n;
  let picked = 0;
  if (words === 1) {
    // Most experts have one replica, so most tokens' pending experts each live on one node: the
    // cover is then forced (every node among theirs, once), and greedy would find the same set.
    let union = 0;
    let single = true;
    for (let i = 0; i < n; i++) {
      const m = masks[pending[i]];
      // (an expert no node holds, m = 0, is left to the general path, which refuses it)
      if (m === 0 || (m & (m - 1)) !== 0) {
        single = false;
        break;
      }
      union |= m;
    }
    if (single) {
      while (union !== 0) {
        const low = union & -union;
        nodes[picked++] = 31 - Math.clz32(low);
        union ^= low;
      }
      ws.picked = picked;
      return picked;
    }
  }
  while (n > 0) {
    hits.fill(0);
    for (let i = 0; i < n; i++) {
      const base = pending[i] * words;
      for (let w = 0; w < words; w++) {
        let bits = masks[base + w];
        while (bits !== 0) {
          const low = bits & -bits;
          hits[(w << 5) + 31 - Math.clz32(low)]++;
          bits ^= low;
        }
      }
    }
    let best = -1;
    let most = 0;
    for (let node = 0; node < numNodes; node++) {
      if (hits[node] > most) {
        most = hits[node];
        best = node;
      }
    }
    if (best < 0) {
      throw new EplbInputError(
        "routing.topk",
        pending[0],
        "must name experts the placement holds (this expert has no replica in the layer)",
      );
    }
    nodes[picked++] = best;
    const bw = best >>> 5;
    const bb = 1 << (best & 31);
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const e = pending[i];
      if ((masks[e * words + bw] & bb) === 0) pending[kept++] = e;
    }
    n = kept;
  }
  ws.picked = picked;
  return picked;
}

/**
 * The nodes of a token's chosen experts (one word of masks) when every one of them lives on
 * exactly one node, else 0.
 */
function singleNodeUnion(topk: Int32Array, at: number, k: number, masks: Uint32Array): number {
  let union = 0;
  for (let j = 0; j < k; j++) {
    const e = topk[at + j];
    if (e < 0) continue;
    const m = masks[e];
    if (m === 0 || (m & (m - 1)) !== 0) return 0;
    union |= m;
  }
  return union;
}

/** The nodes holding any of a token's chosen experts (one word of masks). */
function tokenNodes(topk: Int32Array, at: number, k: number, masks: Uint32Array): number {
  let nodes = 0;
  for (let j = 0; j < k; j++) {
    const e = topk[at + j];
    if (e >= 0) nodes |= masks[e];
  }
  return nodes;
}

function popcount(x: number): number {
  let v = x - ((x >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

/** Running sums of {@link layerRemoteNodes} for one layer. */
export interface LayerDispatch {
  /** Remote nodes summed over tokens (each token weighted 1; an unknown source averaged). */
  remoteNodes: number;
  /** Choices served remotely, same weighting. */
  remoteChoices: number;
  /** Choices that name an expert (not -1). */
  choices: number;
  /** Tokens that name an expert in this layer (the others are not dispatched). */
  routedTokens: number;
}

/**
 * The dispatch rule over one layer of a routing: remote nodes summed over tokens, each token
 * from its rank's node (`floor(rank / gpusPerNode)`) or, when the routing has no ranks, from
 * every node with weight `1 / numNodes`. Allocation-free given the workspace; call it again
 * for a layer whose placement changed (recompute its masks first).
 *
 * @param routing the routing (validated by `makeRouting`)
 * @param layer the layer
 * @param masks the layer's {@link nodeMasks}
 * @param gpusPerNode GPUs per node (a token's node is `floor(rank / gpusPerNode)`)
 * @param ws a workspace for `routing.k` choices and the cluster's nodes
 * @param traffic when given, `traffic[src * numNodes + dst]` is increased by every copy sent
 * @returns the layer's sums
 * @throws {EplbInputError} when a rank is beyond the cluster or a choice names an expert no node
 *   holds
 * @example
 * ```ts
 * const r = makeRouting({ tokens: 2, layers: 1, k: 2, experts: 2,
 *   topk: new Int32Array([0, 1, 1, -1]), rank: new Int32Array([0, 1]) });
 * const masks = nodeMasks(placementFromPhy2log([[0, 1]], 2), 0, { numGpus: 2, numNodes: 2 });
 * layerRemoteNodes(r, 0, masks, 1, createDispatchWorkspace(2, 2));
 * // { remoteNodes: 1, remoteChoices: 1, choices: 3, routedTokens: 2 }
 * ```
 */
export function layerRemoteNodes(
  routing: Routing,
  layer: number,
  masks: Uint32Array,
  gpusPerNode: number,
  ws: DispatchWorkspace,
  traffic?: Float64Array,
): LayerDispatch {
  const { tokens, layers, k, topk, rank } = routing;
  const numNodes = ws.numNodes;
  let remoteNodes = 0;
  let remoteChoices = 0;
  let choices = 0;
  let routedTokens = 0;
  const w = 1 / numNodes;
  for (let t = 0; t < tokens; t++) {
    const at = (t * layers + layer) * k;
    let named = 0;
    for (let j = 0; j < k; j++) if (topk[at + j] >= 0) named++;
    choices += named;
    if (named === 0) continue;
    routedTokens++;
    if (rank !== null) {
      const src = Math.floor(rank[t] / gpusPerNode);
      if (src >= numNodes) {
        throw new EplbInputError(
          `routing.rank[${t}]`,
          rank[t],
          `must be a GPU of the cluster (below ${numNodes * gpusPerNode})`,
        );
      }
      remoteNodes += tokenRemoteNodes(topk, at, masks, src, ws);
      remoteChoices += ws.remoteChoices;
      if (traffic) for (let i = 0; i < ws.picked; i++) traffic[src * numNodes + ws.nodes[i]] += 1;
    } else if (numNodes <= 32 && singleNodeUnion(topk, at, k, masks) !== 0) {
      const union = singleNodeUnion(topk, at, k, masks);
      // Every chosen expert lives on one node: from each source, one copy to each other node of
      // theirs, and every choice is remote from the sources that are not its node.
      remoteNodes += ((numNodes - 1) / numNodes) * popcount(union);
      remoteChoices += ((numNodes - 1) / numNodes) * named;
      if (traffic) {
        for (let src = 0; src < numNodes; src++) {
          let bits = union & ~(1 << src);
          while (bits !== 0) {
            const low = bits & -bits;
            traffic[src * numNodes + 31 - Math.clz32(low)] += w;
            bits ^= low;
          }
        }
      }
    } else {
      // Every source holding none of the token's experts sees the same cover: computed once,
      // after the sources that hold some (each its own).
      const held = numNodes <= 32 ? tokenNodes(topk, at, k, masks) : -1;
      let firstOutside = -1;
      for (let src = 0; src < numNodes; src++) {
        if (held !== -1 && (held & (1 << src)) === 0) {
          if (firstOutside < 0) firstOutside = src;
          continue;
        }
        remoteNodes += w * tokenRemoteNodes(topk, at, masks, src, ws);
        remoteChoices += w * ws.remoteChoices;
        if (traffic) for (let i = 0; i < ws.picked; i++) traffic[src * numNodes + ws.nodes[i]] += w;
      }
      if (firstOutside >= 0) {
        const outside = numNodes - popcount(held);
        remoteNodes += w * outside * tokenRemoteNodes(topk, at, masks, firstOutside, ws);
        remoteChoices += w * outside * ws.remoteChoices;
        if (traffic) {
          for (let src = firstOutside; src < numNodes; src++) {
            if ((held & (1 << src)) !== 0) continue;
            for (let i = 0; i < ws.picked; i++) traffic[src * numNodes + ws.nodes[i]] += w;
          }
        }
      }
    }
  }
  return { remoteNodes, remoteChoices, choices, routedTokens };
}

/**
 * The dispatch metrics of a placement under a routing (docs/locality.md): remote nodes per
 * token overall and per layer, the share of choices served off the token's node, and the
 * node-by-node traffic matrix.
 *
 * @param routing the routing, as many layers and experts as the placement
 * @param placement the placement
 * @param topology `numGpus` and `numNodes` (default 1)
 * @returns the metrics
 * @throws {EplbInputError} when the routing and the placement disagree on layers or experts, a
 *   rank is beyond the cluster, or a choice names an expert the placement does not hold
 * @example
 * ```ts
 * // 2 nodes x 1 GPU; expert 0 on node 0, expert 1 on node 1; one token from each node
 * const r = makeRouting({ tokens: 2, layers: 1, k: 2, experts: 2,
 *   topk: new Int32Array([0, 1, 1, -1]), rank: new Int32Array([0, 1]) });
 * const s = dispatchStats(r, placementFromPhy2log([[0, 1]], 2), { numGpus: 2, numNodes: 2 });
 * s.remoteNodesPerToken; // 0.5
 * s.crossNodeShare; // 0.3333333333333333
 * s.traffic; // Float64Array [0, 1, 0, 0]
 * ```
 */
export function dispatchStats(
  routing: Routing,
  placement: Placement,
  topology: ClusterShape,
): DispatchStats {
  const { numGpus, numNodes = 1 } = topology;
  if (routing.layers !== placement.layers) {
    throw new EplbInputError(
      "routing.layers",
      routing.layers,
      `must equal the placement's layers (${placement.layers})`,
    );
  }
  if (routing.experts !== placement.numExperts) {
    throw new EplbInputError(
      "routing.experts",
      routing.experts,
      `must equal the placement's experts (${placement.numExperts})`,
    );
  }
  const masks = new Uint32Array(placement.numExperts * maskWords(numNodes));
  const ws = createDispatchWorkspace(routing.k, numNodes);
  const traffic = new Float64Array(numNodes * numNodes);
  const perLayer = new Float64Array(routing.layers);
  let remote = 0;
  let remoteChoices = 0;
  let choices = 0;
  let routedTokens = 0;
  for (let l = 0; l < routing.layers; l++) {
    nodeMasks(placement, l, { numGpus, numNodes }, masks);
    const d = layerRemoteNodes(routing, l, masks, numGpus / numNodes, ws, traffic);
    perLayer[l] = d.routedTokens > 0 ? d.remoteNodes / d.routedTokens : 0;
    remote += d.remoteNodes;
    remoteChoices += d.remoteChoices;
    choices += d.choices;
    routedTokens += d.routedTokens;
  }
  return {
    remoteNodesPerToken: routedTokens > 0 ? remote / routedTokens : 0,
    perLayer,
    crossNodeShare: choices > 0 ? remoteChoices / choices : 0,
    traffic,
    numNodes,
    tokens: routing.tokens,
    choices,
    routedTokens,
  };
}
