import type { LayerView } from "../blocks/layers.js";
import type { Topology } from "../model/topology.js";

/** What {@link layerMaxGpuLoad} reads of a layer: its loads, slots and replica counts. */
export type LoadedLayer = Pick<
  LayerView,
  "loads" | "loadOffset" | "phy2log" | "slotOffset" | "logcnt" | "expertOffset"
>;

/**
 * Max GPU load of one layer of a placement (a replica carries `load / count` of its expert). The
 * one max-GPU-load kernel: every plan comparison uses it, and it sums in slot order in float64
 * exactly as {@link gpuLoads} does, so comparisons with the metrics agree to the last bit.
 *
 * @param layer - the layer's loads, slots and counts (see {@link LayerView})
 * @param topology - the GPU count and slots per GPU
 * @returns the largest GPU load (0 for an all-zero layer)
 * @example
 * ```ts
 * const p = placementFromPhy2log([[0, 1, 0, 2]], 3);
 * const layer = { loads: new Float64Array([8, 2, 4]), loadOffset: 0, phy2log: p.phy2log,
 *   slotOffset: 0, logcnt: p.logcnt, expertOffset: 0 };
 * layerMaxGpuLoad(layer, { numGpus: 2, slotsPerGpu: 2 }); // 8
 * ```
 */
export function layerMaxGpuLoad(
  layer: Readonly<LoadedLayer>,
  topology: Pick<Topology, "numGpus" | "slotsPerGpu">,
): number {
  const { loads, loadOffset, phy2log, slotOffset, logcnt, expertOffset } = layer;
  const { numGpus: G, slotsPerGpu: S } = topology;
  let max = 0;
  for (let g = 0; g < G; g++) {
    let sum = 0;
    for (let j = 0; j < S; j++) {
      const e = phy2log[slotOffset + g * S + j];
      sum += loads[loadOffset + e] / logcnt[expertOffset + e];
    }
    if (sum > max) max = sum;
  }
  return max;
}
