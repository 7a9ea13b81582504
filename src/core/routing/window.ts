import { EplbInputError, requireInteger } from "../model/errors.js";
import { makeRouting, type Routing } from "./routing.js";

/**
 * The most token rows a simulated rebalance plans with by default: the window's tokens are
 * sampled evenly down to it, so memory and planning time stay bounded whatever the window
 * (100,000 rows of a 61-layer top-8 model are 195 MB of ids; the locality search judges a
 * sample of 2,048 of them exactly anyway, docs/locality.md).
 */
export const DEFAULT_WINDOW_TOKENS = 100_000;

/**
 * The routing of steps `from .. to - 1` as one routing, their tokens concatenated in step
 * order, sampled evenly (rows `floor(i * total / maxTokens)`) when there are more than
 * `maxTokens`. Reads each step once, in order, and copies the rows it keeps at once, so a reader
 * that reuses one buffer per step is fine and at most `maxTokens` rows (plus the reader's step)
 * are held. Ranks are kept when every step has them.
 *
 * @param tokensOf the token count of a step, known before reading it
 * @param readStep the routing of a step (its arrays may be reused by the next call)
 * @param from the window's first step
 * @param to one past the window's last step (`from < to`)
 * @param maxTokens the most rows kept [default {@link DEFAULT_WINDOW_TOKENS}]
 * @returns the window's routing, validated
 * @throws {EplbInputError} for an empty or inverted window, a `maxTokens` below 1, steps that
 *   disagree on layers, k or experts, or a step whose token count is not `tokensOf`'s
 * @example
 * ```ts
 * const step = (s: number) => makeRouting({ tokens: 2, layers: 1, k: 1, experts: 4,
 *   topk: new Int32Array([s, s + 1]), rank: null });
 * windowRouting(() => 2, step, 1, 3).topk; // Int32Array [1, 2, 2, 3]
 * windowRouting(() => 2, step, 1, 3, 2).topk; // Int32Array [1, 2]: rows 0 and 2 of 4
 * ```
 */
export function windowRouting(
  tokensOf: (step: number) => number,
  readStep: (step: number) => Routing,
  from: number,
  to: number,
  maxTokens: number = DEFAULT_WINDOW_TOKENS,
): Routing {
  requireInteger("from", from, 0);
  requireInteger("to", to, from + 1);
  requireInteger("maxTokens", maxTokens, 1);
  let total = 0;
  for (let s = from; s < to; s++) total += tokensOf(s);
  const kept = Math.min(total, maxTokens);
  let topk: Int32Array | null = null;
  let rank: Int32Array | null = null;
  let shape: { layers: number; k: number; experts: number } | null = null;
  let withRanks = true;
  let row = 0; // global row index of the step's first token
  let next = 0; // the next kept row, as an index into the kept rows
  for (let s = from; s < to; s++) {
    const r = readStep(s);
    if (r.tokens !== tokensOf(s)) {
      throw new EplbInputError(`routing of step ${s}`, r.tokens, `must hold ${tokensOf(s)} tokens`);
    }
    if (!shape || !topk) {
      shape = { layers: r.layers, k: r.k, experts: r.experts };
      topk = new Int32Array(kept * r.layers * r.k);
      rank = new Int32Array(kept);
    } else if (r.layers !== shape.layers || r.k !== shape.k || r.experts !== shape.experts) {
      throw new EplbInputError(
        `routing of step ${s}`,
        `${r.layers} layers x top-${r.k} of ${r.experts} experts`,
        `must match step ${from}'s ${shape.layers} layers x top-${shape.k} of ${shape.experts}`,
      );
    }
    const width = r.layers * r.k;
    withRanks &&= r.rank !== null || r.tokens === 0;
    const end = row + r.tokens;
    for (; next < kept; next++) {
      const want = Math.floor((next * total) / kept);
      if (want >= end) break;
      const t = want - row;
      topk.set(r.topk.subarray(t * width, (t + 1) * width), next * width);
      if (r.rank && rank) rank[next] = r.rank[t];
    }
    row = end;
  }
  const { layers, k, experts } = shape as { layers: number; k: number; experts: number };
  return makeRouting({
    tokens: kept,
    layers,
    k,
    experts,
    topk: topk as Int32Array,
    rank: withRanks ? rank : null,
  });
}
