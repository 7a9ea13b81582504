import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import fc from "fast-check";
import { firstGpuDuplicate } from "../../src/core/blocks/distinct.js";
import { type Placement, placementFromPhy2log, rebalanceExperts } from "../../src/index.js";
import { readPlacement } from "../../src/io/read.js";
import {
  deepseekPlacementJson,
  formatPlacement,
  isOutputFormat,
  OUTPUT_FORMATS,
  type OutputFormat,
  outputFormatExtension,
  sglangPlacementJson,
  trtllmLoadBalancerYaml,
  vllmAscendExpertMap,
  vllmPlacementJson,
} from "../../src/io/writers.js";
import { sharedDir } from "../helpers/cli.js";
import {
  type EngineShape,
  sglangLoad,
  trtllmLoad,
  vllmAscendLoad,
  vllmLoad,
} from "./writers-engine-loaders.js";

const tmp = mkdtempSync(join(tmpdir(), "eplb-writers-"));
let fileCounter = 0;

function rows(p: Placement): number[][] {
  return Array.from({ length: p.layers }, (_, l) =>
    Array.from(p.phy2log.subarray(l * p.numReplicas, (l + 1) * p.numReplicas)),
  );
}

/** Writes `text` to a fresh file with the format's extension and reads it back. */
function roundTrip(text: string, format: OutputFormat, numExperts?: number): Placement {
  const path = join(tmp, `p${fileCounter++}${outputFormatExtension(format)}`);
  writeFileSync(path, text);
  return readPlacement(path, numExperts === undefined ? {} : { numExperts });
}

/** What the engine serves with, through the re-implementation of its own loader. */
function engineLoad(format: OutputFormat, text: string, shape: EngineShape): number[][] {
  switch (format) {
    case "deepseek":
      return JSON.parse(text).phy2log;
    case "sglang":
      return sglangLoad(text, shape).phy2log;
    case "vllm":
      return vllmLoad(text, shape).phy2log;
    case "vllm-ascend":
      return vllmAscendLoad(text, shape).phy2log;
    case "trtllm":
      return trtllmLoad(
        text,
        shape,
        Array.from({ length: shape.layers }, (_, l) => l),
      ).phy2log;
  }
}

/** Random valid placements: every expert in every layer has a slot; GPU count divides slots. */
const placementArb = fc
  .record({
    layers: fc.integer({ min: 1, max: 4 }),
    gpus: fc.integer({ min: 1, max: 6 }),
    slotsPerGpu: fc.integer({ min: 1, max: 5 }),
    // A percentage: fc.double over [0, 1] draws mostly values near 0 (it spreads over bit patterns).
    expertPercent: fc.integer({ min: 0, max: 100 }),
    seed: fc.integer(),
  })
  .map(({ layers, gpus, slotsPerGpu, expertPercent, seed }) => {
    const slots = gpus * slotsPerGpu;
    const experts = Math.max(1, Math.round((expertPercent / 100) * slots));
    let s = seed >>> 0;
    const next = (n: number) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return Math.floor((s / 4294967296) * n);
    };
    const p2l = Array.from({ length: layers }, () => {
      const row = Array.from({ length: slots }, (_, i) => (i < experts ? i : next(experts)));
      for (let i = row.length - 1; i > 0; i--) {
        const j = next(i + 1);
        [row[i], row[j]] = [row[j], row[i]];
      }
      return row;
    });
    return {
      placement: placementFromPhy2log(p2l, experts),
      shape: { layers, experts, gpus, slots },
    };
  });

/**
 * Random placements in which no GPU holds an expert twice (what vllm-ascend can serve): replica
 * counts of at most one per GPU, dealt round-robin over the GPUs, then GPUs and slots shuffled.
 */
const distinctPlacementArb = fc
  .record({
    layers: fc.integer({ min: 1, max: 4 }),
    gpus: fc.integer({ min: 1, max: 6 }),
    slotsPerGpu: fc.integer({ min: 1, max: 5 }),
    extra: fc.integer({ min: 0, max: 30 }),
    seed: fc.integer(),
  })
  .map(({ layers, gpus, slotsPerGpu, extra, seed }) => {
    const slots = gpus * slotsPerGpu;
    // E experts with 1..gpus replicas each fill the slots: slotsPerGpu <= E <= slots.
    const experts = slotsPerGpu + (extra % (slots - slotsPerGpu + 1));
    let s = seed >>> 0;
    const next = (n: number) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return Math.floor((s / 4294967296) * n);
    };
    const p2l = Array.from({ length: layers }, () => {
      const counts = new Array<number>(experts).fill(1);
      for (let left = slots - experts; left > 0; ) {
        const e = next(experts);
        if (counts[e] < gpus) {
          counts[e]++;
          left--;
        }
      }
      const replicas = counts.flatMap((c, e) => new Array<number>(c).fill(e));
      const perGpu: number[][] = Array.from({ length: gpus }, () => []);
      replicas.forEach((e, k) => {
        perGpu[k % gpus].push(e);
      });
      for (let i = perGpu.length - 1; i > 0; i--) {
        const j = next(i + 1);
        [perGpu[i], perGpu[j]] = [perGpu[j], perGpu[i]];
      }
      return perGpu.flatMap((g) => {
        for (let i = g.length - 1; i > 0; i--) {
          const j = next(i + 1);
          [g[i], g[j]] = [g[j], g[i]];
        }
        return g;
      });
    });
    return {
      placement: placementFromPhy2log(p2l, experts),
      shape: { layers, experts, gpus, slots },
    };
  });

describe("every writer round-trips: written -> readPlacement -> identical phy2log", () => {
  for (const format of OUTPUT_FORMATS) {
    test(`${format}: random placements`, () => {
      fc.assert(
        fc.property(
          format === "vllm-ascend" ? distinctPlacementArb : placementArb,
          ({ placement, shape }) => {
            const text = formatPlacement(placement, format, { numGpus: shape.gpus });
            const back = roundTrip(text, format, shape.experts);
            assert.deepEqual(rows(back), rows(placement));
            assert.deepEqual(back.logcnt, placement.logcnt);
          },
        ),
        { numRuns: 60 },
      );
    });
  }
});

describe("every writer's file is what the engine's own loader accepts and serves", () => {
  for (const format of OUTPUT_FORMATS) {
    test(`${format}: the engine serves exactly our phy2log`, () => {
      fc.assert(
        fc.property(
          format === "vllm-ascend" ? distinctPlacementArb : placementArb,
          ({ placement, shape }) => {
            const text = formatPlacement(placement, format, { numGpus: shape.gpus });
            assert.deepEqual(engineLoad(format, text, shape), rows(placement));
          },
        ),
        { numRuns: 60 },
      );
    });
  }

  test("a real SGLang init file (torch .pt) converts to every format and back unchanged", () => {
    const source = readPlacement(join(sharedDir, "fixtures", "sglang-init-p2l.pt"));
    assert.equal(source.layers, 4);
    assert.equal(source.numReplicas, 20);
    const shape = { layers: 4, experts: source.numExperts, gpus: 4, slots: 20 };
    for (const format of OUTPUT_FORMATS) {
      const text = formatPlacement(source, format, { numGpus: 4 });
      assert.deepEqual(rows(roundTrip(text, format)), rows(source), format);
      assert.deepEqual(engineLoad(format, text, shape), rows(source), format);
    }
  });
});

describe("format details the engines depend on", () => {
  const p = placementFromPhy2log(
    [
      [0, 1, 2, 0],
      [2, 2, 1, 0],
    ],
    3,
  );

  test("sglang: exactly one key, since SGLang passes the keys as keyword arguments", () => {
    const json = JSON.parse(sglangPlacementJson(p));
    assert.deepEqual(Object.keys(json), ["physical_to_logical_map"]);
    assert.deepEqual(json.physical_to_logical_map, rows(p));
    // The loader re-implementation refuses a second key, as SGLang's init_by_mapping does.
    const withExtra = JSON.stringify({ ...json, metrics: {} });
    assert.throws(() => sglangLoad(withExtra, { layers: 2, experts: 3, gpus: 2, slots: 4 }));
  });

  test("vllm: logical_to_physical_map is vLLM's width num_redundant_experts + 1, -1 padded", () => {
    const json = JSON.parse(vllmPlacementJson(p));
    assert.deepEqual(Object.keys(json), [
      "physical_to_logical_map",
      "logical_to_physical_map",
      "logical_replica_count",
    ]);
    assert.deepEqual(json.logical_to_physical_map[0], [
      [0, 3],
      [1, -1],
      [2, -1],
    ]);
    assert.deepEqual(json.logical_replica_count, [
      [2, 1, 1],
      [1, 1, 2],
    ]);
    // 16 experts on 20 slots: width 5 even though no expert has more than 2 replicas.
    const wide = rebalanceExperts([Array.from({ length: 16 }, (_, i) => i + 1)], 20, 1, 1, 4);
    const w = JSON.parse(vllmPlacementJson(wide.placement));
    assert.ok(w.logical_to_physical_map[0].every((r: number[]) => r.length === 5));
  });

  test("vllm-ascend: one device_list entry per GPU with its slots' experts, ids in order", () => {
    const q = placementFromPhy2log(
      [
        [0, 1, 2, 0],
        [2, 1, 1, 0],
      ],
      3,
    );
    const json = JSON.parse(vllmAscendExpertMap(q, 2));
    assert.equal(json.moe_layer_count, 2);
    assert.deepEqual(
      json.layer_list.map((l: { layer_id: number; device_count: number }) => [
        l.layer_id,
        l.device_count,
      ]),
      [
        [0, 2],
        [1, 2],
      ],
    );
    assert.deepEqual(json.layer_list[1].device_list, [
      { device_id: 0, device_expert: [2, 1] },
      { device_id: 1, device_expert: [1, 0] },
    ]);
  });

  test("vllm-ascend: a device holding an expert twice is refused, naming layer, device, expert", () => {
    // p's layer 1 puts expert 2 in both slots of device 0.
    assert.throws(
      () => vllmAscendExpertMap(p, 2),
      /^EplbInputError: placement \("layer 1, device 0"\) holds expert 2 twice: vllm-ascend/,
    );
    // Exactly the placements with a duplicate on some GPU are refused.
    fc.assert(
      fc.property(placementArb, ({ placement, shape }) => {
        const dup = firstGpuDuplicate(placement, shape.gpus);
        if (dup === null) vllmAscendExpertMap(placement, shape.gpus);
        else {
          assert.throws(
            () => vllmAscendExpertMap(placement, shape.gpus),
            new RegExp(
              `layer ${dup.layer}, device ${dup.gpu}"\\) holds expert ${dup.expert} twice`,
            ),
          );
        }
      }),
      { numRuns: 100 },
    );
  });

  test("vllm-ascend's routing, re-expressed, misroutes a map with a duplicate on device 0", () => {
    const shape = { layers: 1, experts: 3, gpus: 2, slots: 4 };
    const map = (devices: number[][]) =>
      JSON.stringify({
        moe_layer_count: 1,
        layer_list: [
          {
            layer_id: 0,
            device_count: devices.length,
            device_list: devices.map((d, i) => ({ device_id: i, device_expert: d })),
          },
        ],
      });
    // Rank 0 holds 1 distinct expert, so rank 1's slots are offset by 1 instead of 2: expert 1
    // goes to slot 1, which holds expert 0. This is the map older eplb versions wrote.
    assert.throws(
      () =>
        vllmAscendLoad(
          map([
            [0, 0],
            [1, 2],
          ]),
          shape,
        ),
      /rank 0 routes expert 1 to slot 1, which holds expert 0/,
    );
    // A duplicate on a later device keeps the offsets right but serves one replica only.
    const later = vllmAscendLoad(
      map([
        [0, 1],
        [2, 2],
      ]),
      shape,
    );
    assert.equal(later.collapsedDevices, 1);
    assert.deepEqual(later.log2phyPerRank[0], [
      [0, 1, 3],
      [0, 1, 3],
    ]);
  });

  test("vllm-ascend: every (rank, expert) of a written map reaches its expert, for TP too", () => {
    fc.assert(
      fc.property(distinctPlacementArb, fc.integer({ min: 1, max: 4 }), (d, tp) => {
        const text = vllmAscendExpertMap(d.placement, d.shape.gpus);
        assert.deepEqual(vllmAscendLoad(text, d.shape, tp).phy2log, rows(d.placement));
        assert.equal(vllmAscendLoad(text, d.shape, tp).collapsedDevices, 0);
      }),
      { numRuns: 100 },
    );
  });

  test("trtllm: exactly num_slots, layer_updates_per_iter 0, assignments keyed by model layer", () => {
    const text = trtllmLoadBalancerYaml(p, 2, 3);
    assert.equal(
      text,
      [
        "num_slots: 4",
        "layer_updates_per_iter: 0",
        "initial_global_assignments:",
        "  3: [0, 1, 2, 0]",
        "  4: [2, 2, 1, 0]",
        "",
      ].join("\n"),
    );
    const loaded = trtllmLoad(text, { layers: 2, experts: 3, gpus: 2, slots: 4 }, [3, 4]);
    // Rank-major: rank r loads slots r * num_local_slots ..; our slots are GPU-major.
    assert.deepEqual(loaded.perRank[1], [
      [2, 2],
      [1, 0],
    ]);
    // Without the offset TensorRT-LLM would not find DeepSeek-V3's first MoE layer (3).
    assert.throws(() =>
      trtllmLoad(trtllmLoadBalancerYaml(p), { layers: 2, experts: 3, gpus: 2, slots: 4 }, [3, 4]),
    );
    // The offset does not change what is read back.
    assert.deepEqual(rows(roundTrip(text, "trtllm")), rows(p));
  });

  test("deepseek: the reference's names, identical to rebalanceExperts, metrics when given", () => {
    const r = rebalanceExperts(
      [
        [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
        [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
      ],
      16,
      4,
      2,
      8,
    );
    const json = JSON.parse(deepseekPlacementJson(r.placement, { policy: "deepseek" }));
    assert.deepEqual(json.phy2log, r.phy2log);
    assert.deepEqual(json.log2phy, r.log2phy);
    assert.deepEqual(json.logcnt, r.logcnt);
    assert.deepEqual(json.metrics, { policy: "deepseek" });
    assert.equal("metrics" in JSON.parse(deepseekPlacementJson(r.placement)), false);
  });

  test("every output ends with a newline and the extension matches the syntax", () => {
    for (const format of OUTPUT_FORMATS) {
      // 4 GPUs of one slot: no device repeats an expert, so vllm-ascend writes it too.
      const text = formatPlacement(p, format, { numGpus: 4 });
      assert.ok(text.endsWith("\n"));
      if (outputFormatExtension(format) === ".json") JSON.parse(text);
    }
    assert.equal(outputFormatExtension("trtllm"), ".yaml");
    assert.ok(isOutputFormat("vllm-ascend"));
    assert.equal(isOutputFormat("ascend"), false);
  });
});

describe("writers refuse what no engine could load", () => {
  const p = placementFromPhy2log([[0, 1, 2, 0]], 3);

  test("vllm-ascend without a GPU count", () => {
    assert.throws(
      () => formatPlacement(p, "vllm-ascend"),
      /numGpus .* is required for vllm-ascend/,
    );
  });

  test("a GPU count that does not divide the slots, for every format", () => {
    for (const format of OUTPUT_FORMATS) {
      assert.throws(
        () => formatPlacement(p, format, { numGpus: 3 }),
        /numGpus \(3\) must divide the number of slots per layer \(4\)/,
        format,
      );
    }
  });

  test("an invalid placement (counts that do not match the map)", () => {
    const broken: Placement = { ...p, logcnt: new Int32Array([1, 1, 2]) };
    for (const format of OUTPUT_FORMATS) {
      assert.throws(() => formatPlacement(broken, format, { numGpus: 2 }), /placement/, format);
    }
  });

  test("an unknown format and a negative first layer", () => {
    assert.throws(() => formatPlacement(p, "onnx" as OutputFormat), /must be one of deepseek/);
    assert.throws(() => trtllmLoadBalancerYaml(p, 2, -1), /firstLayer \(-1\)/);
  });
});
