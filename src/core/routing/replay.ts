import type { Placement } from "../model/placement.js";
import type { Topology } from "../model/topology.js";
import {
  createDispatchWorkspace,
  type DispatchWorkspace,
  layerRemoteNodes,
  maskWords,
  nodeMasks,
} from "./dispatch.js";
import type { Routing } from "./routing.js";

/** Realised dispatch figures of one strategy over the judged steps of a replay. */
export interface RealisedDispatch {
  /** Mean over judged steps of the step's remote nodes per token (as `dispatchStats` counts it). */
  remoteNodesPerToken: number;
  /** The judged step with the most remote nodes per token. */
  worstRemoteNodesPerToken: number;
  /** Choices served off the token's node, over all judged steps. */
  crossNodeShare: number;
  /** Remote nodes per token of every judged step. */
  perStep: Float64Array;
}

/** Running sums of one strategy. */
class Tally {
  placement: Placement | null | undefined = undefined;
  masks: Uint32Array;
  sum = 0;
  worst = 0;
  remoteChoices = 0;
  choices = 0;
  steps = 0;
  readonly perStep: Float64Array;

  constructor(layers: number, experts: number, words: number, judged: number) {
    this.masks = new Uint32Array(layers * experts * words);
    this.perStep = new Float64Array(judged);
  }
}

/**
 * Judges the placements of a simulation against a routing trace, step by step: what each
 * strategy's placement costs in dispatch (remote nodes per token, docs/locality.md) on the
 * tokens of the steps it serves. Feed it from the simulator's `onJudged` hook; it reads a step's
 * routing once and judges every strategy on it. Kept out of the simulator so a replay without
 * routing runs exactly as before.
 *
 * @example
 * ```ts
 * // 2 nodes x 1 GPU; one token from node 0 choosing experts 0 and 1, at every step
 * const r = makeRouting({ tokens: 1, layers: 1, k: 2, experts: 2,
 *   topk: new Int32Array([0, 1]), rank: new Int32Array([0]) });
 * const replay = new RoutingReplay(makeTopology(2, 2, 1, 2, 2), () => r, 2);
 * // the simulator calls this through its onJudged hook, once per judged chunk
 * replay.judge(0, 2, { eplb: placementFromPhy2log([[0, 1]], 2), none: null });
 * replay.results().eplb.remoteNodesPerToken; // 1
 * ```
 */
export class RoutingReplay {
  private readonly tallies = new Map<string, Tally>();
  private ws: DispatchWorkspace | null = null;
  private readonly words: number;

  /**
   * @param topology the simulated cluster
   * @param readStep the routing of a trace step (its `topk` may be reused between calls)
   * @param judgedSteps how many steps the simulator judges (the series' length)
   */
  constructor(
    private readonly topology: Topology,
    private readonly readStep: (step: number) => Routing,
    private readonly judgedSteps: number,
  ) {
    this.words = maskWords(topology.numNodes);
  }

  /**
   * Judges steps `start .. start + len - 1` under each strategy's placement (`null`: experts
   * in order, one slot each, as the simulator's `none`).
   *
   * @param start the first step of the chunk
   * @param len the chunk's steps
   * @param placements each strategy's placement for these steps
   * @throws {EplbInputError} when a step's routing does not fit the placements
   */
  judge(
    start: number,
    len: number,
    placements: Readonly<Record<string, Placement | null | undefined>>,
  ): void {
    const { numExperts: E, numNodes } = this.topology;
    const names = Object.keys(placements).filter((n) => placements[n] !== undefined);
    for (let j = 0; j < len; j++) {
      const routing = this.readStep(start + j);
      const { layers } = routing;
      if (!this.ws || this.ws.k !== routing.k)
        this.ws = createDispatchWorkspace(routing.k, numNodes);
      const ws = this.ws;
      for (const name of names) {
        let t = this.tallies.get(name);
        if (!t) {
          t = new Tally(layers, E, this.words, this.judgedSteps);
          this.tallies.set(name, t);
        }
        const p = placements[name] as Placement | null;
        if (t.placement !== p) this.refreshMasks(t, p, layers);
        let remote = 0;
        let routed = 0;
        for (let l = 0; l < layers; l++) {
          const masks = t.masks.subarray(l * E * this.words, (l + 1) * E * this.words);
          const d = layerRemoteNodes(routing, l, masks, this.topology.gpusPerNode, ws);
          remote += d.remoteNodes;
          t.remoteChoices += d.remoteChoices;
          t.choices += d.choices;
          routed += d.routedTokens;
        }
        // As dispatchStats: the mean over the (token, layer) pairs that name an expert.
        const perToken = routed > 0 ? remote / routed : 0;
        if (t.steps < t.perStep.length) t.perStep[t.steps] = perToken;
        t.steps++;
        t.sum += perToken;
        if (perToken > t.worst) t.worst = perToken;
      }
    }
  }

  private refreshMasks(t: Tally, p: Placement | null, layers: number): void {
    const { numExperts: E, numNodes, numGpus } = this.topology;
    const size = E * this.words;
    for (let l = 0; l < layers; l++) {
      const out = t.masks.subarray(l * size, (l + 1) * size);
      if (p) {
        nodeMasks(p, l, { numGpus, numNodes }, out);
      } else {
        // Experts in order: node n holds experts floor(n * E / N) .. floor((n + 1) * E / N) - 1,
        // as contiguousGpuLoads lays them over the GPUs.
        out.fill(0);
        for (let n = 0; n < numNodes; n++) {
          const to = Math.floor(((n + 1) * E) / numNodes);
          for (let e = Math.floor((n * E) / numNodes); e < to; e++) {
            out[e * this.words + (n >>> 5)] |= 1 << (n & 31);
          }
        }
      }
    }
    t.placement = p;
  }

  /**
   * The figures of every strategy judged so far.
   *
   * @returns per strategy name, its realised dispatch figures
   */
  results(): Record<string, RealisedDispatch> {
    const out: Record<string, RealisedDispatch> = {};
    for (const [name, t] of this.tallies) {
      out[name] = {
        remoteNodesPerToken: t.steps > 0 ? t.sum / t.steps : 0,
        worstRemoteNodesPerToken: t.worst,
        crossNodeShare: t.choices > 0 ? t.remoteChoices / t.choices : 0,
        perStep: t.perStep.subarray(0, Math.min(t.steps, t.perStep.length)),
      };
    }
    return out;
  }
}
