import { EplbInputError } from "../model/errors.js";
import type { Routing } from "./routing.js";

/**
 * How often two experts were chosen by the same token in one layer, for the pairs that occur
 * only (sorted by `first`, then `second`, `first < second`).
 */
export interface LayerCoActivation {
  readonly experts: number;
  /** Tokens counted (all of them, or every `stride`-th when capped). */
  readonly tokens: number;
  readonly first: Int32Array;
  readonly second: Int32Array;
  readonly count: Float64Array;
}

/**
 * Counts co-activated expert pairs of one layer: each token adds 1 to every pair of distinct
 * experts among its top-k (ids `-1` ignored, a repeated id counted once). Counting runs in one `experts^2`
 * scratch (`scratch`, reused across layers when given) and only pairs that occur are returned,
 * so memory is one layer's worth whatever the tokens. With `maxTokens`, every
 * `ceil(tokens / maxTokens)`-th token is counted (the statistics of a large routing file
 * converge long before its end).
 *
 * @param routing the validated routing
 * @param layer the layer, `0 .. routing.layers - 1`
 * @param maxTokens the most tokens counted (default all)
 * @param scratch an `experts * experts` array to count in (zeroed on return); a `Uint16Array`
 *   (half the memory traffic) only when at most 65,535 tokens are counted
 * @returns the pairs that occur with their counts
 * @throws {EplbInputError} when `layer` is out of range, `scratch` too small, or a
 *   `Uint16Array` scratch could overflow
 * @example
 * ```ts
 * const r = makeRouting({ tokens: 2, layers: 1, k: 3, experts: 4,
 *   topk: new Int32Array([0, 1, 2, 1, 2, -1]), rank: null });
 * const c = layerCoActivation(r, 0);
 * [c.first, c.second, c.count]; // [[0, 0, 1], [1, 2, 2], [1, 1, 2]]: pairs (0,1) 1, (0,2) 1, (1,2) 2
 * ```
 */
export function layerCoActivation(
  routing: Routing,
  layer: number,
  maxTokens = Number.POSITIVE_INFINITY,
  scratch?: Int32Array | Uint16Array,
): LayerCoActivation {
  const { tokens, layers: L, k, experts: E, topk } = routing;
  if (!Number.isInteger(layer) || layer < 0 || layer >= L) {
    throw new EplbInputError("layer", layer, `must be an integer in 0 .. ${L - 1}`);
  }
  const stride = Math.max(1, Math.ceil(tokens / maxTokens));
  const toCount = Math.ceil(tokens / stride);
  const m = scratch ?? (toCount <= 0xffff ? new Uint16Array(E * E) : new Int32Array(E * E));
  if (m instanceof Uint16Array && toCount > 0xffff) {
    throw new EplbInputError(
      "scratch",
      "Uint16Array",
      `cannot count ${toCount} tokens (at most 65535): pass an Int32Array`,
    );
  }
  if (m.length < E * E) {
    throw new EplbInputError("scratch.length", m.length, `must be at least experts^2 (${E * E})`);
  }
  let counted = 0;
  const distinct = new Int32Array(k);
  for (let t = 0; t < tokens; t += stride) {
    counted++;
    const base = (t * L + layer) * k;
    // The token's distinct experts first (a repeated id counts once), then their pairs.
    let d = 0;
    for (let i = 0; i < k; i++) {
      const e = topk[base + i];
      if (e < 0) continue;
      let seen = false;
      for (let j = 0; j < d; j++) seen ||= distinct[j] === e;
      if (!seen) distinct[d++] = e;
    }
    for (let i = 0; i < d; i++) {
      const a = distinct[i];
      for (let j = i + 1; j < d; j++) {
        const b = distinct[j];
        if (a < b) m[a * E + b]++;
        else m[b * E + a]++;
      }
    }
  }
  let n = 0;
  for (let a = 0; a < E; a++) for (let b = a + 1; b < E; b++) if (m[a * E + b] > 0) n++;
  const first = new Int32Array(n);
  const second = new Int32Array(n);
  const count = new Float64Array(n);
  let i = 0;
  for (let a = 0; a < E; a++) {
    for (let b = a + 1; b < E; b++) {
      const c = m[a * E + b];
      if (c === 0) continue;
      first[i] = a;
      second[i] = b;
      count[i++] = c;
      m[a * E + b] = 0;
    }
  }
  return { experts: E, tokens: counted, first, second, count };
}

/** Co-activation as adjacency lists: expert `e`'s neighbours are `neighbor[start[e] .. start[e + 1])`. */
export interface CoActivationGraph {
  readonly experts: number;
  readonly start: Int32Array;
  readonly neighbor: Int32Array;
  readonly weight: Float64Array;
}

/**
 * The adjacency lists of a layer's co-activation, keeping for every expert its
 * `maxNeighbors` strongest pairs (a pair kept by either end is kept for both, so the graph stays
 * symmetric): the placement search then costs the same per move whatever the routing.
 *
 * @param co the layer's pairs
 * @param maxNeighbors the strongest pairs kept per expert (default all)
 * @returns symmetric adjacency lists with pair counts as weights
 * @example
 * ```ts
 * const r = makeRouting({ tokens: 2, layers: 1, k: 3, experts: 4,
 *   topk: new Int32Array([0, 1, 2, 1, 2, -1]), rank: null });
 * const g = coActivationGraph(layerCoActivation(r, 0), 1);
 * g.neighbor.subarray(g.start[1], g.start[2]); // Int32Array [0, 2]
 * ```
 */
export function coActivationGraph(
  co: LayerCoActivation,
  maxNeighbors = Number.POSITIVE_INFINITY,
): CoActivationGraph {
  const E = co.experts;
  const { first, second, count } = co;
  const n = first.length;
  // Each expert's threshold: the count of its maxNeighbors-th strongest pair.
  const degree = new Int32Array(E + 1);
  for (let i = 0; i < n; i++) {
    degree[first[i] + 1]++;
    degree[second[i] + 1]++;
  }
  for (let e = 0; e < E; e++) degree[e + 1] += degree[e];
  const all = new Float64Array(2 * n);
  const fill = degree.slice(0, E);
  for (let i = 0; i < n; i++) {
    all[fill[first[i]]++] = count[i];
    all[fill[second[i]]++] = count[i];
  }
  const threshold = new Float64Array(E);
  if (maxNeighbors < E) {
    // The maxNeighbors largest counts of each row, kept sorted in a small buffer (a full sort of
    // every row cost more than the search on 384 experts).
    const top = new Float64Array(maxNeighbors);
    for (let e = 0; e < E; e++) {
      if (degree[e + 1] - degree[e] <= maxNeighbors) continue;
      let size = 0;
      for (let i = degree[e]; i < degree[e + 1]; i++) {
        const w = all[i];
        if (size === maxNeighbors && w <= top[size - 1]) continue;
        let j = size < maxNeighbors ? size++ : size - 1;
        while (j > 0 && top[j - 1] < w) {
          top[j] = top[j - 1];
          j--;
        }
        top[j] = w;
      }
      threshold[e] = top[maxNeighbors - 1];
    }
  }
  const keep = new Uint8Array(n);
  const start = new Int32Array(E + 1);
  for (let i = 0; i < n; i++) {
    if (count[i] >= threshold[first[i]] || count[i] >= threshold[second[i]]) {
      keep[i] = 1;
      start[first[i] + 1]++;
      start[second[i] + 1]++;
    }
  }
  for (let e = 0; e < E; e++) start[e + 1] += start[e];
  const neighbor = new Int32Array(start[E]);
  const weight = new Float64Array(start[E]);
  const at = start.slice(0, E);
  for (let i = 0; i < n; i++) {
    if (!keep[i]) continue;
    const a = first[i];
    const b = second[i];
    neighbor[at[a]] = b;
    weight[at[a]++] = count[i];
    neighbor[at[b]] = a;
    weight[at[b]++] = count[i];
  }
  return { experts: E, start, neighbor, weight };
}
