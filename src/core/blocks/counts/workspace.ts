import { OrderWorkspace } from "../order.js";
import { ReplicationWorkspace } from "../replication.js";

/** Reusable buffers for {@link searchReplicaCounts} and friends. */
export class CountsWorkspace {
  /** For `waterFillCounts` (replication.ts). */
  readonly replication = new ReplicationWorkspace();
  key = new Float64Array(0);
  trial = new Int32Array(0);
  trialOrder = new Int32Array(0);
  replicaLoad = new Float64Array(0);
  gpuHeap = new Int32Array(0);
  gpuLoad = new Float64Array(0);
  gpuFill = new Int32Array(0);
  gpuStamp = new Int32Array(0);
  gpuMult = new Int32Array(0);
  blocked = new Int32Array(0);
  itemExpert = new Int32Array(0);
  itemGpu = new Int32Array(0);
  hot = new Int32Array(0);
  receivers = new Int32Array(0);
  donors = new Int32Array(0);
  mark = new Int32Array(0);
  beam = new Int32Array(0);
  nextBeam = new Int32Array(0);
  beamOrder = new Int32Array(0);
  nextBeamOrder = new Int32Array(0);
  zobrist = new Int32Array(0);
  childValue = new Float64Array(0);
  childAtMax = new Int32Array(0);
  childParent = new Int32Array(0);
  childDonor = new Int32Array(0);
  childReceiver = new Int32Array(0);
  readonly orderWorkspace = new OrderWorkspace();
  /** Hashes of the count vectors a search has estimated. */
  readonly seen = new Set<number>();
  /** Experts on the hottest GPU of the last estimate, and how many. */
  hotCount = 0;
  /** GPUs within tolerance of the maximum in the last estimate. */
  atMax = 0;
  /**
   * Work units spent by {@link searchReplicaCounts} on this workspace since it was made (each
   * scored count vector adds its `trialCost`); never reset, so callers read differences.
   */
  work = 0;

  /** Grows the beam buffers for `width` count vectors of `numExperts`. */
  ensureBeam(numExperts: number, width: number): void {
    if (this.beam.length < numExperts * width) {
      this.beam = new Int32Array(numExperts * width);
      this.nextBeam = new Int32Array(numExperts * width);
      this.beamOrder = new Int32Array(numExperts * width);
      this.nextBeamOrder = new Int32Array(numExperts * width);
    }
    if (this.zobrist.length < 2 * numExperts) {
      // Fixed pseudo-random constants (an LCG), so hashes and hence results are deterministic.
      this.zobrist = new Int32Array(2 * numExperts);
      let x = 0x2545f491;
      for (let i = 0; i < this.zobrist.length; i++) {
        x = (Math.imul(x, 1664525) + 1013904223) | 0;
        this.zobrist[i] = (x >>> 6) & 0x3ffffff;
      }
    }
    if (this.childValue.length < width) {
      this.childValue = new Float64Array(width);
      this.childAtMax = new Int32Array(width);
      this.childParent = new Int32Array(width);
      this.childDonor = new Int32Array(width);
      this.childReceiver = new Int32Array(width);
    }
  }

  ensure(numExperts: number, numSlots: number, numGpus: number): void {
    if (this.trial.length < numExperts) {
      this.key = new Float64Array(numExperts);
      this.trial = new Int32Array(numExperts);
      this.trialOrder = new Int32Array(numExperts);
      this.replicaLoad = new Float64Array(numExperts);
      this.receivers = new Int32Array(numExperts);
      this.donors = new Int32Array(numExperts);
      this.mark = new Int32Array(numExperts);
    }
    if (this.itemExpert.length < numSlots) {
      this.itemExpert = new Int32Array(numSlots);
      this.itemGpu = new Int32Array(numSlots);
      this.hot = new Int32Array(numSlots);
    }
    if (this.gpuHeap.length < numGpus) {
      this.gpuHeap = new Int32Array(numGpus);
      this.gpuLoad = new Float64Array(numGpus);
      this.gpuFill = new Int32Array(numGpus);
      this.gpuStamp = new Int32Array(numGpus);
      this.gpuMult = new Int32Array(numGpus);
      this.blocked = new Int32Array(numGpus);
    }
  }
}
