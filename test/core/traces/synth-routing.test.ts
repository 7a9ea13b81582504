import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  resolveSynthRoutingOptions,
  synthesizeRouting,
  synthRouting,
} from "../../../src/core/traces/synth-routing.js";
import { EplbInputError } from "../../../src/index.js";
import { assertRefused } from "../../helpers/refused.js";

/** Connected components of layer l's experts, linking the experts each token chose together. */
function coactivationComponents(
  topk: Int32Array,
  tokens: number,
  layers: number,
  k: number,
  E: number,
  l: number,
): number[][] {
  const parent = Array.from({ length: E }, (_, e) => e);
  const find = (e: number): number => {
    let r = e;
    while (parent[r] !== r) r = parent[r];
    return r;
  };
  const used = new Set<number>();
  for (let t = 0; t < tokens; t++) {
    const base = (t * layers + l) * k;
    for (let j = 0; j < k; j++) {
      used.add(topk[base + j]);
      parent[find(topk[base + j])] = find(topk[base]);
    }
  }
  const sets = new Map<number, number[]>();
  for (const e of [...used].sort((a, b) => a - b)) {
    const r = find(e);
    sets.set(r, [...(sets.get(r) ?? []), e]);
  }
  return [...sets.values()].sort((a, b) => a[0] - b[0]);
}

describe("resolveSynthRoutingOptions", () => {
  test("fills the documented defaults", () => {
    assert.deepEqual(resolveSynthRoutingOptions({ tokens: 10, layers: 2, experts: 64, k: 6 }), {
      tokens: 10,
      layers: 2,
      experts: 64,
      k: 6,
      steps: 1,
      seed: 1,
      clusters: 8,
      affinity: 0.8,
      sigma: 1,
      drift: 0.01,
    });
    assert.equal(
      resolveSynthRoutingOptions({ tokens: 1, layers: 1, experts: 5, k: 1 }).clusters,
      5,
    );
  });

  test("refuses each bad option, naming it, its value and the rule", () => {
    const base = { tokens: 10, layers: 2, experts: 4, k: 2 };
    const cases: [object, string, string][] = [
      [{ k: 6 }, "k", "k (6) must be an integer in 1 .. 4 (the experts)"],
      [{ k: 0 }, "k", "k (0) must be an integer >= 1"],
      [{ tokens: 0 }, "tokens", "tokens (0) must be an integer >= 1"],
      [{ clusters: 5 }, "clusters", "clusters (5) must be at most the experts (4)"],
      [{ steps: 0 }, "steps", "steps (0) must be an integer >= 1"],
      [{ seed: -1 }, "seed", "seed (-1) must be an integer >= 0"],
      [{ affinity: 1.5 }, "affinity", "affinity (1.5) must be a finite number in [0, 1]"],
      [{ sigma: 11 }, "sigma", "sigma (11) must be a finite number in [0, 10]"],
      [{ drift: -0.1 }, "drift", "drift (-0.1) must be a finite number in [0, 10]"],
      [{ drift: Number.NaN }, "drift", "drift (NaN) must be a finite number in [0, 10]"],
    ];
    for (const [bad, parameter, message] of cases) {
      assertRefused(
        () => resolveSynthRoutingOptions({ ...base, ...bad }),
        EplbInputError,
        message,
        parameter,
      );
      assertRefused(() => synthRouting({ ...base, ...bad }), EplbInputError, message, parameter);
    }
  });
});

describe("synthRouting", () => {
  const options = { tokens: 300, layers: 2, experts: 16, k: 4, steps: 5, seed: 3 };

  test("seeded: the same options give the same steps, another seed others", () => {
    const a = synthRouting(options);
    const b = synthRouting(options);
    for (let s = 0; s < 5; s++) assert.deepEqual(a.readStep(s).topk, b.readStep(s).topk);
    assert.notDeepEqual(
      synthRouting({ ...options, seed: 4 }).readStep(0).topk,
      synthRouting(options).readStep(0).topk,
    );
  });

  test("each token's choices in a layer are distinct expert ids; k = experts chooses them all", () => {
    for (const o of [
      options,
      { ...options, k: 16, clusters: 2 },
      { ...options, k: 1, clusters: 16 },
    ]) {
      const r = synthRouting(o).readStep(2);
      assert.deepEqual([r.tokens, r.layers, r.k, r.experts, r.rank], [300, 2, o.k, 16, null]);
      for (let i = 0; i < r.tokens * r.layers; i++) {
        const row = Array.from(r.topk.subarray(i * o.k, (i + 1) * o.k));
        assert.ok(row.every((e) => e >= 0 && e < 16));
        assert.equal(new Set(row).size, o.k);
      }
    }
  });

  test("reading backwards restarts the stream: read again in order, the steps come again", () => {
    const src = synthRouting(options);
    const first = [0, 1, 2, 3, 4].map((s) => src.readStep(s).topk);
    assert.deepEqual(
      [0, 1, 2, 3, 4].map((s) => src.readStep(s).topk),
      first,
    );
    assert.deepEqual(src.readStep(0).topk, first[0]);
  });

  test("refuses a step outside 0 .. steps - 1", () => {
    const src = synthRouting(options);
    for (const bad of [-1, 5, 1.5]) {
      assertRefused(
        () => src.readStep(bad),
        EplbInputError,
        `step (${bad}) must be an integer in 0..4`,
        "step",
      );
    }
  });

  test("with affinity 1 the experts chosen together form the clusters; with 0 one component", () => {
    const o = { tokens: 3000, layers: 2, experts: 32, k: 2, clusters: 4, sigma: 0.5, seed: 5 };
    const clustered = synthRouting({ ...o, affinity: 1 }).readStep(0);
    const layers = [0, 1].map((l) => coactivationComponents(clustered.topk, 3000, 2, 2, 32, l));
    for (const sets of layers) {
      assert.deepEqual(
        sets.map((c) => c.length),
        [8, 8, 8, 8],
      );
    }
    // The split is drawn at random per layer: not runs of consecutive ids, not the same twice.
    const runs = (c: number[]) => c.every((e, i) => i === 0 || e === c[i - 1] + 1);
    assert.ok(!layers[0].every(runs), JSON.stringify(layers[0]));
    assert.notDeepEqual(layers[0], layers[1]);
    const mixed = synthRouting({ ...o, affinity: 0 }).readStep(0);
    assert.equal(coactivationComponents(mixed.topk, 3000, 2, 2, 32, 0).length, 1);
  });

  test("sigma 0 without clusters: every expert about equally popular; sigma 2: far from it", () => {
    const share = (sigma: number) => {
      const r = synthRouting({
        tokens: 4000,
        layers: 1,
        experts: 8,
        k: 1,
        clusters: 1,
        sigma,
        seed: 2,
      }).readStep(0);
      const c = new Array<number>(8).fill(0);
      for (const e of r.topk) c[e]++;
      return Math.max(...c) / 4000;
    };
    assert.ok(share(0) < 0.15, `${share(0)}`);
    assert.ok(share(2) > 0.3, `${share(2)}`);
  });

  test("the description says synthetic and gives every parameter", () => {
    const src = synthRouting(options);
    assert.equal(src.synthetic, true);
    assert.equal(
      src.description,
      "SYNTHETIC routing (eplb synth --routing): 5 steps x 300 tokens x 2 layers, top-4 of 16 experts, seed 3, 8 co-activated clusters per layer (affinity 0.8), lognormal sigma 1, drift 0.01/step",
    );
    assert.deepEqual(src.options, resolveSynthRoutingOptions(options));
  });
});

describe("synthesizeRouting", () => {
  test("step 0 of synthRouting, marked synthetic; steps beyond the first are ignored", () => {
    const r = synthesizeRouting({ ...{ tokens: 50, layers: 1, experts: 8, k: 2 }, steps: 9 });
    const src = synthRouting({ tokens: 50, layers: 1, experts: 8, k: 2 });
    assert.deepEqual(r.topk, src.readStep(0).topk);
    assert.equal(r.synthetic, true);
    assert.equal(r.description, src.description);
    assert.equal(r.topk.length, 100);
  });
});
