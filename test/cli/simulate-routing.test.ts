/**
 * src/cli/simulate-routing.ts: `eplb simulate --routing`: the routing opened against the trace
 * (its steps mapped through --steps, refused when it does not fit), eplb's row label, and the
 * judge's table lines and JSON (whole runs are test/cli/simulate-locality.test.ts's).
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { UsageError } from "../../src/cli/command.js";
import {
  eplbLabel,
  openSimulationRouting,
  routingJudge,
  type SimulationRouting,
} from "../../src/cli/simulate-routing.js";
import { round6 } from "../../src/core/routing/summary.js";
import { type SimulationResult, simulate } from "../../src/core/traces/simulate.js";
import { EplbFormatError } from "../../src/io/errors.js";
import { encodeNpy } from "../../src/io/npy-write.js";
import { assertRefused } from "../helpers/refused.js";
import { routedTrace } from "../helpers/routed-trace.js";
import { tempFiles } from "../helpers/temp.js";

const { dir, file } = tempFiles("eplb-simulate-routing-");
// 6 steps of 40 tokens, 2 layers, 16 experts, top-3.
const { trace, steps } = routedTrace({
  steps: 6,
  tokens: 40,
  layers: 2,
  experts: 16,
  k: 3,
  seed: 8,
});
const ids = steps.flatMap((s) => Array.from(s.topk));
const routingPath = file("steps.npy", encodeNpy(ids, [6, 40, 2, 3], "int64"));
const routingName = routingPath.slice(dir.length + 1);
const shape = { steps: 6, layers: 2, experts: 16 };

function open(flags: Record<string, unknown>, t = shape): SimulationRouting {
  const r = openSimulationRouting({ routing: routingName, ...flags } as never, dir, t);
  assert.ok(r);
  return r;
}

describe("openSimulationRouting", () => {
  test("without --routing: null", () => {
    assert.equal(openSimulationRouting({}, dir, shape), null);
  });

  test("a .npy routing, step by step, relative to the command's cwd", () => {
    const r = open({});
    try {
      assert.deepEqual(
        { file: r.file, layers: r.layers, k: r.k, describe: r.describe, sources: r.sources },
        { file: routingName, layers: 2, k: 3, describe: "40 tokens per step", sources: "spread" },
      );
      for (let s = 0; s < 6; s++) {
        assert.deepEqual([...r.readStep(s).topk], [...steps[s].topk], `step ${s}`);
        assert.equal(r.tokensOf(s), 40);
      }
    } finally {
      r.close();
    }
  });

  test("--steps slices the routing as it slices the trace: replayed step i is routing step 2 + 2i", () => {
    const r = open({ steps: "2::2" }, { ...shape, steps: 2 });
    try {
      assert.deepEqual([...r.readStep(0).topk], [...steps[2].topk]);
      assert.deepEqual([...r.readStep(1).topk], [...steps[4].topk]);
    } finally {
      r.close();
    }
  });

  test("refusals in one line: no file, with --sweep, other layers, other steps, missing", () => {
    assertRefused(
      () => openSimulationRouting({ routing: "" }, dir, shape),
      UsageError,
      "--routing needs a file",
    );
    assertRefused(
      () => openSimulationRouting({ routing: routingName, sweep: ["interval=1,2"] }, dir, shape),
      UsageError,
      "--routing judges one run: it cannot be combined with --sweep",
    );
    assertRefused(
      () => open({}, { ...shape, layers: 3 }),
      EplbFormatError,
      `${routingName}: routing has 2 layers, the trace 3: they must describe the same MoE layers`,
    );
    assertRefused(
      () => open({}, { ...shape, steps: 5 }),
      EplbFormatError,
      `${routingName}: routing has 6 steps, the replayed trace 5: give the routing of the trace's steps`,
    );
    assertRefused(
      () => open({ steps: "1:" }, shape),
      EplbFormatError,
      `${routingName}: routing has 6 steps (5 after --steps 1:), the replayed trace 6: give the routing of the trace's steps`,
    );
    assertRefused(
      () => openSimulationRouting({ routing: "nope.npy" }, dir, shape),
      UsageError,
      "cannot read nope.npy: no such file",
    );
  });
});

describe("eplbLabel", () => {
  test("the policy, then from previous and locality when they apply", () => {
    const label = (policy: string, fromPrevious: boolean, localityPlanning: boolean) =>
      eplbLabel({ policy, fromPrevious, localityPlanning } as unknown as SimulationResult);
    assert.equal(label("balanced", false, false), "eplb (balanced)");
    assert.equal(label("balanced", true, false), "eplb (balanced, from previous)");
    assert.equal(label("deepseek", true, true), "eplb (deepseek, from previous, locality)");
    assert.equal(label("deepseek", false, true), "eplb (deepseek, locality)");
  });
});

describe("routingJudge", () => {
  // 4 nodes of 2 GPUs, 24 slots: a rebalance every 2 steps, 4 judged steps.
  const config = { numReplicas: 24, numGroups: 1, numNodes: 4, numGpus: 8, interval: 2, window: 2 };

  test("judges every judged step of every strategy; the JSON rounds, the table says the same", () => {
    const r = open({});
    try {
      const judge = routingJudge(r, config, 16, 4);
      const result = simulate(trace, { ...config, onJudged: judge.onJudged });
      const json = judge.json() as Record<
        string,
        { remoteNodesPerToken: number; perStep: number[] }
      > & {
        routing: unknown;
      };
      assert.deepEqual(json.routing, {
        file: routingName,
        description: "40 tokens per step",
        k: 3,
        sources: "spread",
      });
      for (const name of ["eplb", "none", "deepseek"]) {
        const s = json[name];
        assert.ok(s, name);
        assert.equal(s.perStep.length, 4, name);
        for (const v of s.perStep) assert.equal(v, round6(v));
        // On 4 nodes a token's top-3 reaches at most 3 other nodes.
        assert.ok(s.remoteNodesPerToken >= 0 && s.remoteNodesPerToken <= 3, name);
      }
      const lines = judge.table(result).split("\n");
      assert.equal(
        lines[0],
        `routing ${routingName}: 40 tokens per step, top-3; remote nodes per token (docs/locality.md):`,
      );
      const eplbLine = lines.find((l) => l.trimStart().startsWith(eplbLabel(result)));
      assert.ok(eplbLine, lines.join("\n"));
      assert.equal(eplbLine.trim().split(/\s+/).at(-3), json.eplb.remoteNodesPerToken.toFixed(3));
      assert.match(
        lines.at(-2) ?? "",
        /source node unknown in a \.npy routing: spread evenly over the nodes/,
      );
    } finally {
      r.close();
    }
  });
});
