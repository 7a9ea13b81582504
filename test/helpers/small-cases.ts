import type { PlainConfig } from "../../src/pipeline/sweep.js";

/**
 * The hand-computed evaluation case. 4 experts, 6 slots on 3 GPUs (2 slots each):
 * phy2log [0, 1 | 0, 2 | 3, 1]: experts 0 and 1 have two replicas, 2 and 3 one.
 * layer 0 loads [8, 4, 2, 2]: GPUs 8/2+4/2=6, 8/2+2=6, 2+4/2=4   mean 16/3, max 6
 * layer 1 loads [0, 0, 3, 3]: GPUs 0, 3, 3                       mean 2,    max 3
 * Without EPLB (experts 0 | 1 | 2,3): layer 0 GPUs 8, 4, 4; layer 1 GPUs 0, 0, 6.
 */
export const evalCase = {
  loads: [
    [8, 4, 2, 2],
    [0, 0, 3, 3],
  ],
  phy2log: [
    [0, 1, 0, 2, 3, 1],
    [0, 1, 0, 2, 3, 1],
  ],
};

/**
 * A small simulation configuration for traces of 8 experts: 12 slots on 4 GPUs, rebalancing
 * every 20 steps with deepseek (fast; the policy is not what the pipeline tests are about).
 */
export const smallSimulation: PlainConfig = {
  numReplicas: 12,
  numGroups: 1,
  numNodes: 1,
  numGpus: 4,
  interval: 20,
  window: 20,
  policy: "deepseek",
};
