/**
 * Test re-implementations of what each engine does with a placement file, following the engines'
 * own loader code (repository and path given per function). They throw where the engine would
 * raise or assert, and return the `phy2log` the engine ends up serving with, so a writer test can
 * check both "the engine accepts it" and "the engine serves the placement we planned".
 */
import assert from "node:assert/strict";
import { readYaml } from "../../src/io/yaml.js";

/** The serving shape the engine is started with (its model config and parallel flags). */
export interface EngineShape {
  /** MoE layers of the model. */
  layers: number;
  /** Logical (routed) experts of the model. */
  experts: number;
  /** EP ranks (world size). */
  gpus: number;
  /** Physical slots per layer: experts + redundant experts. */
  slots: number;
}

/** A 2-D int64 tensor from eplb's torch reader as nested rows (other values pass through). */
function tensorRows(value: unknown): unknown {
  const t = value as { dtype?: string; shape?: number[]; data?: ArrayLike<number> };
  if (t?.shape === undefined || t.data === undefined) return value;
  assert.equal(t.dtype, "int64", "SGLang: physical_to_logical_map must be an integer tensor");
  assert.equal(t.shape.length, 2, "SGLang: physical_to_logical_map is [layers, slots]");
  const [layers, slots] = t.shape;
  return Array.from({ length: layers }, (_, l) =>
    Array.from({ length: slots }, (_, s) => (t.data as ArrayLike<number>)[l * slots + s]),
  );
}

function isIntMatrix(value: unknown): value is number[][] {
  return (
    Array.isArray(value) &&
    value.every((row) => Array.isArray(row) && row.every((v) => Number.isInteger(v)))
  );
}

/**
 * SGLang `--init-expert-location` (`python/sglang/srt/eplb/expert_location.py`,
 * sgl-project/sglang@01fec5c2e61f9568c41a6e1d4fd5ac46c88504f1):
 * `compute_initial_expert_location_metadata` takes a value ending in `.pt` to `torch.load(path,
 * weights_only=True)`, one ending in `.json` to `json.loads` of the file, and parses any other
 * value as inline JSON; here `source` is the JSON text or the dict `torch.load` returned (read by
 * eplb's torch reader; its tensor must be int64, as torch indexes with it). As the dict has
 * `physical_to_logical_map`, calls `init_by_mapping(server_args, model_config, **data_dict)`
 * (so any other key is an unexpected keyword argument); `torch.tensor` needs a rectangular
 * integer matrix; `_compute_logical_to_all_physical_map` appends each physical id to its logical
 * expert's list (an id >= num_logical_experts is an IndexError), pads with -1; `_init_raw` pads to
 * `num_physical_experts` and counts valid entries; `__post_init__` asserts the shapes agree;
 * `_init_common` fixes `num_physical = num_logical + ep_num_redundant_experts`, divisible by
 * `ep_size`; static dispatch (`compute_logical_to_rank_dispatch_physical_map`) needs every logical
 * expert to have a physical copy (`_fair_choices` divides by the candidate count).
 */
export function sglangLoad(source: string | Record<string, unknown>, shape: EngineShape) {
  const data =
    typeof source === "string"
      ? (JSON.parse(source) as Record<string, unknown>)
      : Object.fromEntries(Object.entries(source).map(([k, v]) => [k, tensorRows(v)]));
  assert.ok("physical_to_logical_map" in data, "SGLang: no physical_to_logical_map");
  const extra = Object.keys(data).filter((k) => k !== "physical_to_logical_map");
  assert.deepEqual(extra, [], "SGLang: init_by_mapping() got unexpected keyword arguments");
  const p2l = data.physical_to_logical_map;
  assert.ok(isIntMatrix(p2l), "SGLang: torch.tensor needs an integer matrix");
  const numPhysical = shape.experts + (shape.slots - shape.experts);
  assert.equal(numPhysical % shape.gpus, 0, "SGLang: num_physical_experts % ep_size");
  assert.equal(p2l.length, shape.layers, "SGLang: layers of physical_to_logical_map");
  for (const row of p2l) assert.equal(row.length, numPhysical, "SGLang: ragged tensor / shape");
  const l2all: number[][][] = p2l.map(() => Array.from({ length: shape.experts }, () => []));
  for (let l = 0; l < p2l.length; l++) {
    for (let s = 0; s < numPhysical; s++) {
      const e = p2l[l][s];
      assert.ok(e >= 0 && e < shape.experts, `SGLang: IndexError for logical id ${e}`);
      l2all[l][e].push(s);
    }
  }
  const numValid = l2all.map((layer) => layer.map((slots) => slots.length));
  for (const layer of numValid) {
    for (const n of layer) assert.ok(n > 0, "SGLang: a logical expert without physical copy");
  }
  // Dispatch: each rank prefers a copy on itself (what the engine routes to).
  const slotsPerGpu = numPhysical / shape.gpus;
  for (let l = 0; l < p2l.length; l++) {
    for (let e = 0; e < shape.experts; e++) {
      for (const s of l2all[l][e]) assert.equal(p2l[l][s], e);
      assert.ok(l2all[l][e].every((s) => Math.floor(s / slotsPerGpu) < shape.gpus));
    }
  }
  return { phy2log: p2l, logicalToAllPhysical: l2all, numValid };
}

/**
 * vLLM keeps its placement in memory (`vllm/distributed/eplb/eplb_state.py`), so the file is
 * checked against the invariants of `EplbModelState`: `physical_to_logical_map` `[L, P]`,
 * `logical_to_physical_map` `[L, E, num_redundant_experts + 1]` with each expert's valid slots
 * first and -1 after (the router indexes `[.., replica_idx % count]`), `logical_replica_count`
 * equal to the number of valid entries, every entry mapping back to its expert.
 */
export function vllmLoad(text: string, shape: EngineShape) {
  const data = JSON.parse(text) as Record<string, unknown>;
  const p2l = data.physical_to_logical_map;
  const l2p = data.logical_to_physical_map as number[][][];
  const count = data.logical_replica_count;
  assert.ok(isIntMatrix(p2l) && isIntMatrix(count) && Array.isArray(l2p));
  const width = shape.slots - shape.experts + 1;
  assert.equal(p2l.length, shape.layers);
  assert.equal(l2p.length, shape.layers);
  assert.equal(count.length, shape.layers);
  for (let l = 0; l < shape.layers; l++) {
    assert.equal(p2l[l].length, shape.slots);
    assert.equal(l2p[l].length, shape.experts);
    assert.equal(count[l].length, shape.experts);
    const seen = new Set<number>();
    for (let e = 0; e < shape.experts; e++) {
      const row = l2p[l][e];
      assert.equal(row.length, width, "vLLM: logical_to_physical_map width");
      const n = count[l][e];
      assert.ok(n >= 1, "vLLM: every expert has a replica");
      for (let i = 0; i < width; i++) {
        if (i < n) {
          assert.equal(p2l[l][row[i]], e, "vLLM: logical_to_physical_map inverts the map");
          assert.ok(!seen.has(row[i]), "vLLM: a slot listed twice");
          seen.add(row[i]);
        } else {
          assert.equal(row[i], -1, "vLLM: -1 padding after the valid slots");
        }
      }
    }
    assert.equal(seen.size, shape.slots, "vLLM: every slot reachable");
  }
  return { phy2log: p2l };
}

/**
 * vllm-ascend `expert_map_path`, as vllm-project/vllm-ascend@182b75ea84ff13ece27b57391331ef8935410aea
 * reads it (`vllm_ascend/eplb/core/eplb_utils.py`; `ascend_config.py` `_validate_config`;
 * `ops/fused_moe/routed_experts.py` `init_eplb`):
 * - MoE layer `i` (the i-th MoE layer the process builds, `moe_counter`) reads
 *   `layer_list[i]` by position (`expert_file_to_tensor`: `i > moe_layer_count` raises; `i ==
 *   moe_layer_count` is the MTP layer); `layer_id`, `device_id` and `device_count` are not read;
 * - `torch.tensor(device_data)` needs equal-length device lists; `physical_count` is the sum of
 *   their lengths, and `n_redundant = physical_count - num_logical_experts` must match the
 *   redundant slots allocated (`init_eplb`'s local capacity check); rank `r` takes
 *   `global_placement[r]` for `r < ep_size`;
 * - `init_eplb_config`: per rank, `expert_map[local_placement] = arange(local)` (an expert id
 *   past the logical experts is an IndexError; for an expert listed twice on a device the last
 *   write wins, as torch's CPU index_put does);
 * - `generate_log2phy_map`: `valid_count` is the number of distinct experts on **rank 0**, and
 *   every rank's candidate for expert e is `local_index + rank * valid_count`; each rank picks
 *   candidate `ep_rank % n` (or `(tp_rank + dp_like_rank + e) % n` when `tp_size > 1`); the
 *   token then goes to physical slot `log2phy[e]`, served by rank `slot / local` at `slot % local`.
 * Asserts every (rank, expert) of every layer is routed to a slot that holds that expert (which a
 * duplicate on device 0 breaks for every later rank), and returns what the engine serves.
 */
export function vllmAscendLoad(text: string, shape: EngineShape, tpSize = 1) {
  const data = JSON.parse(text) as {
    moe_layer_count: number;
    layer_list: { device_list: { device_expert: number[] }[] }[];
  };
  const layersNum = data.moe_layer_count;
  assert.ok(shape.layers <= layersNum, "vllm-ascend: Invalid EPLB Table (layer > moe_layer_count)");
  const phy2log: number[][] = [];
  const log2phyPerRank: number[][][] = []; // [layer][rank][expert] -> physical slot
  let collapsed = 0;
  for (let i = 0; i < shape.layers; i++) {
    const devices = data.layer_list[i].device_list.map((d) => d.device_expert);
    const local = devices[0].length;
    for (const experts of devices) {
      assert.equal(experts.length, local, "vllm-ascend: torch.tensor needs equal device lists");
    }
    const physicalCount = devices.reduce((n, d) => n + d.length, 0);
    assert.equal(
      physicalCount - shape.experts,
      shape.slots - shape.experts,
      "vllm-ascend: EPLB local expert capacity mismatch (redundant experts)",
    );
    assert.ok(devices.length >= shape.gpus, "vllm-ascend: global_placement[rankid] IndexError");
    // init_eplb_config: one logical -> local map per rank, the last write winning.
    const expertMaps: number[][] = [];
    for (let r = 0; r < shape.gpus; r++) {
      const map = new Array<number>(shape.experts).fill(-1);
      devices[r].forEach((e, j) => {
        assert.ok(Number.isInteger(e) && e >= 0 && e < shape.experts, "vllm-ascend: IndexError");
        map[e] = j;
      });
      if (new Set(devices[r]).size < devices[r].length) collapsed++;
      expertMaps.push(map);
    }
    // generate_log2phy_map, with its offset taken from rank 0.
    const validCount = expertMaps[0].filter((v) => v !== -1).length;
    const candidates: number[][] = Array.from({ length: shape.experts }, () => []);
    expertMaps.forEach((map, r) => {
      map.forEach((v, e) => {
        if (v !== -1) candidates[e].push(v + r * validCount);
      });
    });
    const row = devices.slice(0, shape.gpus).flat();
    const perRank: number[][] = [];
    for (let rank = 0; rank < shape.gpus; rank++) {
      const l2p = candidates.map((c, e) => {
        assert.ok(c.length > 0, `vllm-ascend: expert ${e} has no slot`);
        const pick =
          tpSize > 1
            ? ((rank % tpSize) + Math.floor(rank / tpSize) + e) % c.length
            : rank % c.length;
        return c[pick];
      });
      l2p.forEach((slot, e) => {
        assert.equal(
          row[slot],
          e,
          `vllm-ascend: layer ${i}, rank ${rank} routes expert ${e} to slot ${slot}, which holds expert ${row[slot]}`,
        );
      });
      perRank.push(l2p);
    }
    phy2log.push(row);
    log2phyPerRank.push(perRank);
  }
  return { phy2log, log2phyPerRank, collapsedDevices: collapsed };
}

/**
 * TensorRT-LLM `moe_config.load_balancer: file.yaml` (`tensorrt_llm/llmapi/llm_args.py`
 * `MoeLoadBalancerConfig`, a pydantic model that forbids extra keys; `setup(ep_rank, ep_size)`;
 * `setup(ep_rank, ep_size)` raises unless `num_slots % ep_size == 0`;
 * `get_layer_initial_global_assignments(layer_idx)` raises KeyError for a missing layer and
 * ValueError unless it has `num_slots` entries), as NVIDIA/TensorRT-LLM@0004396720054fd8e205cbf616f21f0b57c6b412
 * has it; the MoE module (`tensorrt_llm/_torch/modules/fused_moe/interface.py`,
 * NVIDIA/TensorRT-LLM@567239fcd40bda119965a3a8abf43856c63c9527) then asserts `num_slots >=
 * num_experts` and `set(assignments) == set(range(num_experts))`, and rank `r` loads slots
 * `r * num_local_slots .. (r + 1) * num_local_slots`. `modelLayers` are the model's MoE layer
 * indices.
 */
export function trtllmLoad(text: string, shape: EngineShape, modelLayers: number[]) {
  const cfg = readYaml(new TextEncoder().encode(text), "lb.yaml") as Record<string, unknown>;
  const allowed = ["num_slots", "initial_global_assignments", "layer_updates_per_iter"];
  for (const k of Object.keys(cfg)) assert.ok(allowed.includes(k), `pydantic: extra key ${k}`);
  const numSlots = cfg.num_slots as number;
  assert.ok(Number.isInteger(numSlots), "num_slots is an int");
  assert.equal(cfg.layer_updates_per_iter, 0, "static placement");
  assert.equal(numSlots % shape.gpus, 0, "num_slots % ep_size");
  assert.ok(numSlots >= shape.experts, "num_slots >= num_experts");
  const assignments = cfg.initial_global_assignments as Record<string, number[]>;
  // pydantic coerces Dict[int, List[int]] keys; PyYAML already yields ints.
  const byLayer = new Map(Object.entries(assignments).map(([k, v]) => [Number(k), v]));
  const numLocal = numSlots / shape.gpus;
  const phy2log: number[][] = [];
  const perRank: number[][][] = [];
  for (const layer of modelLayers) {
    const a = byLayer.get(layer);
    assert.ok(a !== undefined, `assert layer_idx ${layer} in initial_global_assignments`);
    assert.equal(a.length, numSlots, "assert len(assignments) == num_slots");
    assert.ok(a.every((e) => Number.isInteger(e) && e >= 0 && e < shape.experts));
    assert.equal(new Set(a).size, shape.experts, "set(assignments) == set(range(num_experts))");
    perRank.push(
      Array.from({ length: shape.gpus }, (_, r) => a.slice(r * numLocal, (r + 1) * numLocal)),
    );
    phy2log.push(a);
  }
  assert.equal(byLayer.size, modelLayers.length, "no layers beyond the model's");
  return { phy2log, perRank, numSlots };
}
