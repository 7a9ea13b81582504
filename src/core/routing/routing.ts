import { EplbInputError, requireInteger } from "../model/errors.js";

/**
 * Which logical experts each token chose in each layer (its top-k), flat and row-major, and
 * where each token came from when the engine recorded it. The input of locality-aware
 * placement and of the dispatch metrics (docs/locality.md).
 */
export interface Routing {
  readonly tokens: number;
  readonly layers: number;
  /** Choices per token and layer. */
  readonly k: number;
  /** Logical experts per layer: every id is `-1` (no choice recorded) or in `0 .. experts - 1`. */
  readonly experts: number;
  /** `topk[(t * layers + l) * k + j]`: token `t`'s `j`-th expert in layer `l`, or -1. */
  readonly topk: Int32Array;
  /**
   * The EP rank (GPU index, so node `floor(rank / gpusPerNode)`) each token was dispatched
   * from, or `null` when unknown (tokens are then taken as spread evenly over nodes).
   */
  readonly rank: Int32Array | null;
}

/**
 * Validates routing once at the boundary: shapes, ids in range, ranks non-negative.
 *
 * @param routing the fields of a {@link Routing}
 * @returns the same routing, checked
 * @throws {EplbInputError} naming the field, the value and the rule
 *
 * @example
 * ```ts
 * const r = makeRouting({ tokens: 2, layers: 1, k: 2, experts: 4,
 *   topk: new Int32Array([0, 1, 2, -1]), rank: null });
 * r.tokens; // 2
 * makeRouting({ tokens: 1, layers: 1, k: 2, experts: 4, topk: new Int32Array([0, 4]), rank: null });
 * // throws EplbInputError: topk[1] (4) must be -1 or an expert id in 0 .. 3
 * ```
 */
export function makeRouting(routing: Routing): Routing {
  if (validated.has(routing)) return routing;
  const tokens = requireInteger("tokens", routing.tokens, 0);
  const layers = requireInteger("layers", routing.layers, 1);
  const k = requireInteger("k", routing.k, 1);
  const experts = requireInteger("experts", routing.experts, 1);
  const { topk, rank } = routing;
  if (!(topk instanceof Int32Array) || topk.length !== tokens * layers * k) {
    throw new EplbInputError(
      "topk.length",
      topk?.length,
      `must equal tokens * layers * k (${tokens} * ${layers} * ${k} = ${tokens * layers * k})`,
    );
  }
  for (let i = 0; i < topk.length; i++) {
    const e = topk[i];
    if (e < -1 || e >= experts) {
      throw new EplbInputError(
        `topk[${i}]`,
        e,
        `must be -1 or an expert id in 0 .. ${experts - 1}`,
      );
    }
  }
  if (rank !== null) {
    if (!(rank instanceof Int32Array) || rank.length !== tokens) {
      throw new EplbInputError("rank.length", rank?.length, `must equal tokens (${tokens})`);
    }
    for (let t = 0; t < tokens; t++) {
      if (rank[t] < 0) throw new EplbInputError(`rank[${t}]`, rank[t], "must be >= 0");
    }
  }
  const out = { tokens, layers, k, experts, topk, rank };
  validated.add(out);
  return out;
}

/**
 * Routings `makeRouting` returned: checking 48 million ids again (Kimi K2, 100,000 tokens) cost a
 * tenth of a locality plan, and a routing read from a file is checked by its reader already.
 */
const validated = new WeakSet<Routing>();
