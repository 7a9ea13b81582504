import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cli, spawnCli } from "../helpers/cli.js";
import { routedTrace } from "../helpers/routed-trace.js";
import { tempFiles } from "../helpers/temp.js";
import { npyBytes } from "../io/support.js";

const { file } = tempFiles("eplb-cli-simulate-locality-");

describe("simulate --routing --locality", () => {
  // 8 nodes x 2 GPUs, 64 experts on 80 slots, top-6, 1 layer: 8 steps of 600 tokens.
  const { trace, steps } = routedTrace({
    steps: 8,
    tokens: 600,
    layers: 1,
    experts: 64,
    k: 6,
    seed: 2,
  });
  const traceFile = file("trace.npy", npyBytes("<f8", [8, 1, 64], Array.from(trace.data)));
  const ids = steps.flatMap((s) => Array.from(s.topk));
  const routing = file("steps.npy", npyBytes("<i4", [8, 600, 1, 6], ids));
  const args = [
    "simulate",
    "--trace",
    traceFile,
    "--replicas",
    "80",
    "--nodes",
    "8",
    "--gpus",
    "16",
    "--interval",
    "4",
    "--routing",
    routing,
  ];

  test("eplb plans with the window's routing: config.locality, fewer remote nodes than without", async () => {
    const plain = JSON.parse((await cli([...args, "--json"])).stdout);
    const r = await cli([...args, "--locality", "--locality-tokens", "1000", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.deepEqual(j.config.locality, {
      window: 4,
      maxTokens: 1000,
      localityTolerance: 0.005,
      localityGain: 0.005,
    });
    assert.equal(plain.config.locality, undefined);
    assert.ok(
      j.locality.eplb.remoteNodesPerToken < plain.locality.eplb.remoteNodesPerToken,
      `${j.locality.eplb.remoteNodesPerToken} vs ${plain.locality.eplb.remoteNodesPerToken}`,
    );
    // The baselines plan without routing.
    assert.deepEqual(j.locality.deepseek, plain.locality.deepseek);
    assert.deepEqual(j.baselines, plain.baselines);
  });

  test("the tables name the locality planning; --fresh has no gain", async () => {
    const r = await cli([...args, "--locality", "--fresh", "--locality-tolerance", "0.01"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /eplb \(balanced, locality\)/);
    assert.match(
      r.stdout,
      /eplb plans each rebalance with the routing of the last 4 steps \(at most 100000 tokens, sampled evenly; tolerance 0\.01\); the baselines, the oracle too, plan without routing\./,
    );
    const j = JSON.parse((await cli([...args, "--locality", "--fresh", "--json"])).stdout);
    assert.equal(j.config.locality.localityGain, undefined);
  });

  test("a strict hierarchy is warned of (the search leaves its plans unchanged), --relaxed is not", async () => {
    const strict = await cli([...args, "--groups", "8", "--locality", "--json"]);
    assert.equal(strict.code, 0, strict.stderr);
    assert.match(strict.stderr, /warning: --locality under a strict hierarchy changes no plan/);
    const relaxed = await cli([...args, "--groups", "8", "--relaxed", "--locality", "--json"]);
    assert.equal(relaxed.code, 0, relaxed.stderr);
    assert.doesNotMatch(relaxed.stderr, /warning/);
  });

  test("refused in one line where it cannot apply", () => {
    const cases: [string[], RegExp][] = [
      [
        args.filter((a) => a !== "--routing" && a !== routing).concat("--locality"),
        /--locality needs --routing/,
      ],
      [[...args, "--locality", "--sweep", "interval=2,4"], /cannot be combined with --sweep/],
      [[...args, "--locality", "--recommend"], /cannot be combined with --recommend/],
      [[...args, "--locality-gain", "0.01"], /--locality-gain needs --locality/],
      [
        [...args, "--locality", "--fresh", "--locality-gain", "0.01"],
        /cannot be combined with --fresh/,
      ],
      [[...args, "--locality", "--locality-tokens", "0"], /--locality-tokens/],
      [
        [...args, "--locality", "--model", "deepseek-v3", "--hardware", "h800"],
        /needs --no-cost-gate/,
      ],
    ];
    for (const [argv, message] of cases) {
      const r = spawnCli(argv);
      assert.equal(r.code, 2, argv.join(" "));
      assert.match(r.stderr, message);
      assert.equal(r.stderr.trim().split("\n").length, 1, r.stderr);
    }
  });
});
