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

function isIntMatrix(value: unknown): value is number[][] {
  return (
    Array.isArray(value) &&
    value.every((row) => Array.isArray(row) && row.every((v) => Number.isInteger(v)))
  );
}

/**
 * SGLang `--init-expert-location x.json` (`python/sglang/srt/eplb/expert_location.py`):
 * `compute_initial_expert_location_metadata` parses the JSON and, as it has
 * `physical_to_logical_map`, calls `init_by_mapping(server_args, model_config, **data_dict)`
 * (so any other key is an unexpected keyword argument); `torch.tensor` needs a rectangular
 * integer matrix; `_compute_logical_to_all_physical_map` appends each physical id to its logical
 * expert's list (an id >= num_logical_experts is an IndexError), pads with -1; `_init_raw` pads to
 * `num_physical_experts` and counts valid entries; `__post_init__` asserts the shapes agree;
 * `_init_common` fixes `num_physical = num_logical + ep_num_redundant_experts`, divisible by
 * `ep_size`; static dispatch (`compute_logical_to_rank_dispatch_physical_map`) needs every logical
 * expert to have a physical copy (`_fair_choices` divides by the candidate count).
 */
export function sglangLoad(text: string, shape: EngineShape) {
  const data = JSON.parse(text) as Record<string, unknown>;
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
 * vllm-ascend `expert_map_path` (`vllm_ascend/eplb/core/eplb_utils.py`, `ExpertLoadBalancer` and
 * `EplbStatLogger`): `layers_num = moe_layer_count`, `gpus_num = layer_list[0].device_count`,
 * `torch.tensor([[device_expert per device] per layer])` (rectangular), checked against the
 * model's MoE layers and the world size; the redundant count is
 * `len(device_expert of device 0) * gpus_num - global_expert_num`; `phy2log` is the devices' lists
 * concatenated. Also returns how many (layer, device) pairs hold an expert twice, which
 * `generate_expert_placement_map` collapses into one local slot.
 */
export function vllmAscendLoad(text: string, shape: EngineShape) {
  const data = JSON.parse(text) as {
    moe_layer_count: number;
    layer_list: { device_count: number; device_list: { device_expert: number[] }[] }[];
  };
  const layersNum = data.moe_layer_count;
  const gpusNum = data.layer_list[0].device_count;
  assert.equal(layersNum, shape.layers, "vllm-ascend: moe_layer_count vs the model");
  assert.equal(data.layer_list.length, layersNum, "vllm-ascend: layer_list length");
  assert.equal(gpusNum, shape.gpus, "vllm-ascend: device_count vs world size");
  const tensor = data.layer_list.map((layer) => layer.device_list.map((d) => d.device_expert));
  const local = tensor[0][0].length;
  for (const layer of tensor) {
    assert.equal(layer.length, gpusNum, "vllm-ascend: devices per layer");
    for (const experts of layer) {
      assert.equal(experts.length, local, "vllm-ascend: torch.tensor needs equal device lists");
      assert.ok(experts.every((e) => Number.isInteger(e) && e >= 0 && e < shape.experts));
    }
  }
  assert.equal(local * gpusNum - shape.experts, shape.slots - shape.experts, "redundant experts");
  let collapsed = 0;
  for (const layer of tensor) {
    for (const experts of layer) if (new Set(experts).size < experts.length) collapsed++;
  }
  const phy2log = tensor.map((layer) => layer.flat());
  for (const row of phy2log) {
    for (let e = 0; e < shape.experts; e++) assert.ok(row.includes(e), "expert without a slot");
  }
  return { phy2log, collapsedDevices: collapsed };
}

/**
 * TensorRT-LLM `moe_config.load_balancer: file.yaml` (`tensorrt_llm/llmapi/llm_args.py`
 * `MoeLoadBalancerConfig`, a pydantic model that forbids extra keys; `setup(ep_rank, ep_size)`;
 * `get_layer_initial_global_assignments(layer_idx)` asserts the layer is present and has
 * `num_slots` entries; rank `r` loads slots `r * num_local_slots .. (r + 1) * num_local_slots`).
 * `modelLayers` are the model's MoE layer indices.
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
    perRank.push(
      Array.from({ length: shape.gpus }, (_, r) => a.slice(r * numLocal, (r + 1) * numLocal)),
    );
    phy2log.push(a);
  }
  assert.equal(byLayer.size, modelLayers.length, "no layers beyond the model's");
  return { phy2log, perRank, numSlots };
}
