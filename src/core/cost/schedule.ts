// The optimal round schedule of a rebalance's weight transfers.
//
// Each transfer between GPUs is an edge from its sending GPU to its receiving GPU of a bipartite
// multigraph (senders on one side, receivers on the other; several copies between one pair are
// parallel edges). A round in which every GPU sends at most one and receives at most one expert
// is a matching, so a schedule is a proper edge colouring, and König's edge-colouring theorem says
// a bipartite multigraph of largest degree Δ needs exactly Δ colours. The colouring below reaches
// Δ by alternating paths (Kempe chains): to colour edge (u, v), take a colour `a` free at u and a
// colour `b` free at v; if `a` is taken at v, swap `a` and `b` along the a/b path that starts at
// v. In a bipartite graph that path never reaches u, so afterwards `a` is free at both ends.

import { TRANSFER_KINDS, type TransferPlan } from "../evaluation/transfers.js";
import { EplbInputError } from "../model/errors.js";
import type { Topology } from "../model/topology.js";
import { type CostModel, copyMs } from "./model.js";

/** A rebalance's transfers in rounds (see {@link scheduleTransfers}). */
export interface TransferSchedule {
  readonly rounds: number;
  /** Per transfer of the plan (index into TransferPlan arrays): its round, or -1 for a local copy (needs no round). */
  readonly roundOf: Int32Array;
  /** Transfers of round r are order[roundStart[r] .. roundStart[r + 1]) (indices into the plan). */
  readonly roundStart: Int32Array;
  readonly order: Int32Array;
  /** Per round: its slowest transfer's copyMs (all 0 without a cost model). */
  readonly roundMs: Float64Array;
  /** Sum of roundMs. */
  readonly totalMs: number;
}

/** Options of {@link scheduleTransfers}. */
export interface ScheduleOptions {
  /**
   * Schedule the transfers of each chunk of this many consecutive layers in rounds of their own,
   * chunk after chunk, so an engine can apply a rebalance a chunk at a time. The total is then
   * the sum over chunks of each chunk's largest per-GPU count (each chunk optimal on its own).
   * Absent: all layers together.
   */
  layerChunk?: number;
}

const INTER = TRANSFER_KINDS.indexOf("interNode");

/**
 * The largest round table (`2 * GPUs * rounds` int32 entries, 256 MiB) a schedule builds; a
 * DeepSeek re-plan of Kimi K2 on 96 GPUs needs about 10^5.
 */
const MAX_COLOUR_TABLE = 1 << 26;

/**
 * Schedules a transfer plan in the fewest rounds: per round every GPU sends at most one and
 * receives at most one expert, local copies (kind `local`) need no round, and the number of
 * rounds is the largest number of copies between GPUs that any GPU sends or receives, which no
 * schedule can beat (König's edge-colouring theorem for bipartite multigraphs). Inter-node copies
 * are coloured first, into the first rounds (as few as the busiest GPU's inter-node copies allow),
 * and the intra-node copies prefer the other rounds, so fewer rounds wait for a slow inter-node
 * link; their alternating-path swaps pair two rounds on the same side of that split where they
 * can, and otherwise may move an inter-node copy into another round (never at the cost of a
 * round).
 * Each round lasts as long as its slowest copy under `model` (`copyMs`).
 *
 * @param plan the transfers (from `planTransfers` or a rebalance's `transfers`)
 * @param topology the shape the plan's slots belong to (slots per GPU)
 * @param model prices each copy; without one every `roundMs` is 0
 * @param options `layerChunk`: schedule chunks of that many layers one after another
 * @returns rounds, each transfer's round and the plan indices grouped by round
 * @throws {EplbInputError} when `layerChunk` is not a positive integer, or when one GPU sends or
 *   receives so many copies that the round table (`2 * numGpus * rounds` entries) would pass
 *   2^26 entries (schedule in layer chunks then)
 * @example
 * ```ts
 * const t = makeTopology(4, 8, 1, 2, 4); // 2 nodes of 2 GPUs, 2 slots per GPU
 * const plan = planTransfers(placementFromPhy2log([[0, 1, 2, 3, 0, 1, 2, 3]], 4),
 *   placementFromPhy2log([[0, 2, 2, 3, 0, 3, 2, 1]], 4), t);
 * const m = makeCostModel({ expertBytes: 50e6, intraGbps: 1600, interGbps: 400, tokenUs: 0 });
 * const s = scheduleTransfers(plan, t, m);
 * s.rounds; // 1
 * s.totalMs; // 0.25
 * ```
 */
export function scheduleTransfers(
  plan: TransferPlan,
  topology: Topology,
  model?: CostModel,
  options: ScheduleOptions = {},
): TransferSchedule {
  const layers = plan.layerOffsets.length - 1;
  const chunk = options.layerChunk ?? Math.max(1, layers);
  if (!Number.isInteger(chunk) || chunk < 1) {
    throw new EplbInputError("layerChunk", options.layerChunk, "must be an integer >= 1");
  }
  const G = topology.numGpus;
  const S = topology.slotsPerGpu;
  const n = plan.count;
  const sender = new Int32Array(n);
  const receiver = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    sender[i] = Math.floor(plan.source[i] / S);
    receiver[i] = G + Math.floor(plan.destination[i] / S);
  }
  const roundOf = new Int32Array(n).fill(-1);
  const colourer = new EdgeColourer(G, sender, receiver, plan.kind, roundOf);
  let rounds = 0;
  for (let first = 0; first < layers; first += chunk) {
    const start = plan.layerOffsets[first];
    const end = plan.layerOffsets[Math.min(layers, first + chunk)];
    rounds += colourer.colour(start, end, rounds);
  }
  // Group plan indices by round (a counting sort keeps plan order inside a round).
  const roundStart = new Int32Array(rounds + 1);
  for (let i = 0; i < n; i++) if (roundOf[i] >= 0) roundStart[roundOf[i] + 1]++;
  for (let r = 0; r < rounds; r++) roundStart[r + 1] += roundStart[r];
  const order = new Int32Array(roundStart[rounds]);
  const next = roundStart.slice(0, rounds);
  const roundMs = new Float64Array(rounds);
  for (let i = 0; i < n; i++) {
    const r = roundOf[i];
    if (r < 0) continue;
    order[next[r]++] = i;
    if (model) roundMs[r] = Math.max(roundMs[r], copyMs(model, TRANSFER_KINDS[plan.kind[i]]));
  }
  let totalMs = 0;
  for (let r = 0; r < rounds; r++) totalMs += roundMs[r];
  return { rounds, roundOf, roundStart, order, roundMs, totalMs };
}

/**
 * Colours the non-local transfers of a plan range with Δ colours (Δ = the range's largest
 * per-GPU send or receive count), writing `base + colour` into `roundOf`. Vertices are senders
 * `0..G-1` and receivers `G..2G-1`; `at[v * Δ + c]` is the edge of colour `c` at `v`, or -1,
 * and bit `c` of `used[v * words ..]` says the same in 32 colours a word, so that free colours
 * are found a word at a time.
 */
class EdgeColourer {
  private at = new Int32Array(0);
  private used = new Int32Array(0);
  private words = 0;
  private readonly degree: Int32Array;
  private readonly colourOf: Int32Array;
  private path = new Int32Array(0);

  constructor(
    private readonly numGpus: number,
    private readonly sender: Int32Array,
    private readonly receiver: Int32Array,
    private readonly kind: Uint8Array,
    private readonly roundOf: Int32Array,
  ) {
    this.degree = new Int32Array(2 * numGpus);
    this.colourOf = new Int32Array(sender.length);
  }

  /** Colours edges `start .. end`; returns Δ, the colours (rounds) used. */
  colour(start: number, end: number, base: number): number {
    const { degree, sender, receiver, kind } = this;
    degree.fill(0);
    const interDegree = new Int32Array(2 * this.numGpus);
    for (let i = start; i < end; i++) {
      if (kind[i] === 0) continue;
      degree[sender[i]]++;
      degree[receiver[i]]++;
      if (kind[i] === INTER) {
        interDegree[sender[i]]++;
        interDegree[receiver[i]]++;
      }
    }
    let delta = 0;
    let interDelta = 0;
    for (let v = 0; v < degree.length; v++) {
      delta = Math.max(delta, degree[v]);
      interDelta = Math.max(interDelta, interDegree[v]);
    }
    if (delta === 0) return 0;
    const size = 2 * this.numGpus * delta;
    if (size > MAX_COLOUR_TABLE) {
      // Only a plan where one GPU sends or receives an enormous share of the copies gets here:
      // refuse in one line rather than fail to allocate.
      throw new EplbInputError(
        "transfers",
        `${delta} copies from or to one GPU among ${this.numGpus}`,
        `need a ${size}-entry round table (more than ${MAX_COLOUR_TABLE}); schedule in layer chunks (layerChunk)`,
      );
    }
    if (this.at.length < size) this.at = new Int32Array(size);
    this.at.fill(-1, 0, size);
    this.words = (delta + 31) >> 5;
    const usedSize = 2 * this.numGpus * this.words;
    if (this.used.length < usedSize) this.used = new Int32Array(usedSize);
    this.used.fill(0, 0, usedSize);
    if (this.path.length < end - start) this.path = new Int32Array(end - start);
    // Inter-node copies first, within their own Δ (König again, on that subgraph): they share
    // the first rounds. The intra-node copies then look for free colours from the last round
    // down, away from them.
    for (let i = start; i < end; i++) {
      if (kind[i] === INTER) this.colourEdge(i, delta, interDelta, 0, false);
    }
    for (let i = start; i < end; i++) {
      if (kind[i] !== 0 && kind[i] !== INTER) this.colourEdge(i, delta, delta, interDelta, true);
    }
    for (let i = start; i < end; i++) if (kind[i] !== 0) this.roundOf[i] = base + this.colourOf[i];
    return delta;
  }

  /**
   * Colours edge `e` with one of the first `palette` colours (a stride of Δ per vertex). Colours
   * below `split` hold the inter-node copies: a swap of two colours on the same side of it never
   * moves one of those out, so such a pair is preferred.
   */
  private colourEdge(
    e: number,
    delta: number,
    palette: number,
    split: number,
    fromTop: boolean,
  ): void {
    const { at, colourOf, used, words } = this;
    const uWords = this.sender[e] * words;
    const vWords = this.receiver[e] * words;
    // A colour free at both ends needs no swap (and swaps are what move inter-node copies out
    // of their rounds), so look for one first.
    const common = freeColour(used, uWords, vWords, 0, palette, fromTop);
    if (common >= 0) {
      this.assign(e, common, delta);
      return;
    }
    let a = freeColour(used, uWords, -1, split, palette, fromTop);
    let b = freeColour(used, vWords, -1, split, palette, fromTop);
    if (a < 0 || b < 0) {
      const aLow = freeColour(used, uWords, -1, 0, split, fromTop);
      const bLow = freeColour(used, vWords, -1, 0, split, fromTop);
      if (aLow >= 0 && bLow >= 0) {
        a = aLow;
        b = bLow;
      } else {
        // No pair on one side: a mixed swap (it may move inter-node copies, never adds a round).
        if (a < 0) a = aLow;
        if (b < 0) b = bLow;
      }
    }
    if (a < 0 || b < 0) {
      throw new Error("internal: no free colour at a vertex of degree <= palette");
    }
    // The a/b alternating path from v: a at v, then b, then a... It cannot reach u (senders are
    // entered by a-edges and u has none), so swapping a and b along it frees a at v.
    const path = this.path;
    let length = 0;
    let vertex = this.receiver[e];
    let c = a;
    for (;;) {
      const edge = at[vertex * delta + c];
      if (edge < 0) break;
      path[length++] = edge;
      vertex = vertex === this.receiver[edge] ? this.sender[edge] : this.receiver[edge];
      c = c === a ? b : a;
    }
    for (let k = 0; k < length; k++) this.unassign(path[k], delta);
    for (let k = 0; k < length; k++) {
      const edge = path[k];
      this.assign(edge, colourOf[edge] === a ? b : a, delta);
    }
    this.assign(e, a, delta);
  }

  private assign(e: number, c: number, delta: number): void {
    const u = this.sender[e];
    const v = this.receiver[e];
    this.colourOf[e] = c;
    this.at[u * delta + c] = e;
    this.at[v * delta + c] = e;
    this.used[u * this.words + (c >> 5)] |= 1 << (c & 31);
    this.used[v * this.words + (c >> 5)] |= 1 << (c & 31);
  }

  private unassign(e: number, delta: number): void {
    const u = this.sender[e];
    const v = this.receiver[e];
    const c = this.colourOf[e];
    this.at[u * delta + c] = -1;
    this.at[v * delta + c] = -1;
    this.used[u * this.words + (c >> 5)] &= ~(1 << (c & 31));
    this.used[v * this.words + (c >> 5)] &= ~(1 << (c & 31));
  }
}

/**
 * A colour in `[lo, hi)` free at the vertex whose bit row starts at `row` (and at `other`'s too
 * unless it is -1): the lowest, or the highest with `fromTop`; -1 when none is.
 */
function freeColour(
  used: Int32Array,
  row: number,
  other: number,
  lo: number,
  hi: number,
  fromTop: boolean,
): number {
  if (hi <= lo) return -1;
  const first = lo >> 5;
  const last = (hi - 1) >> 5;
  for (let k = 0; k <= last - first; k++) {
    const w = fromTop ? last - k : first + k;
    let free = ~(used[row + w] | (other < 0 ? 0 : used[other + w]));
    if (w === first) free &= -1 << (lo & 31);
    const above = hi - 32 * w;
    if (above < 32) free &= (1 << above) - 1;
    if (free === 0) continue;
    return 32 * w + (fromTop ? 31 - Math.clz32(free) : 31 - Math.clz32(free & -free));
  }
  return -1;
}
