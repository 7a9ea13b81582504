import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { cli, spawnCli } from "../helpers/cli.js";
import { tempFiles } from "../helpers/temp.js";
import { npyBytes } from "../io/support.js";

const { file } = tempFiles("eplb-cli-routing-");

// DeepSeek's README example: 2 layers x 12 experts, 16 slots on 8 GPUs in 2 nodes, 4 groups.
const loads = "examples/loads.json";
const shape = ["--replicas", "16", "--groups", "4", "--nodes", "2", "--gpus", "8"];
// The SGLang fixtures' 3 layers x 8 experts (test/fixtures/engines/make_sglang.py) on 4 GPUs.
const shape20 = ["--replicas", "20", "--groups", "4", "--nodes", "2", "--gpus", "4"];
// 3 tokens x 2 layers x top-2
const ids = [0, 11, 5, 6, 3, -1, 2, 2, 7, 8, 9, 10];
const routing = file("routing.npy", npyBytes("<i8", [3, 2, 2], ids));

describe("--routing on plan, eval and report", () => {
  test("plan: metrics.locality and the summary lines; with --previous the previous placement's figure", async () => {
    const r = await cli(["plan", "--loads", loads, ...shape, "--routing", routing]);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout).metrics;
    assert.deepEqual(m.locality.routing, { tokens: 3, layers: 2, k: 2, sources: "spread" });
    assert.equal(m.locality.placement.perLayer.length, 2);
    assert.equal(m.locality.placement.traffic.length, 2);
    assert.match(
      r.stderr,
      /remote nodes per token \(routing: 3 tokens x 2 layers, top-2, sources spread over nodes\) {2}plan \d\.\d{3}/,
    );
    assert.match(r.stderr, /choices served off the token's node: \d+\.\d%/);
    const plan = file("plan.json", r.stdout);
    const again = await cli([
      "plan",
      "--loads",
      loads,
      ...shape,
      "--routing",
      routing,
      "--previous",
      plan,
    ]);
    assert.equal(again.code, 0, again.stderr);
    const l = JSON.parse(again.stdout).metrics.locality;
    assert.deepEqual(l.previous, m.locality.placement);
    assert.match(again.stderr, /previous \d\.\d{3}/);
  });

  test("plan without --routing has no locality figures", async () => {
    const r = await cli(["plan", "--loads", loads, ...shape]);
    assert.equal(JSON.parse(r.stdout).metrics.locality, undefined);
    assert.doesNotMatch(r.stderr, /remote nodes/);
  });

  test("a strict hierarchy: the hierarchy's own cost, the plan's loss within it, what --relaxed plans", async () => {
    const r = await cli(["plan", "--loads", loads, ...shape, "--routing", routing]);
    const h = JSON.parse(r.stdout).metrics.hierarchy;
    assert.ok(h.hierarchyCost >= 1 && h.lossWithin >= 1 && h.exact);
    assert.ok(h.relaxed.balancedness > 0 && h.relaxed.remoteNodesPerToken >= 0);
    assert.match(
      r.stderr,
      /strict hierarchy \(groups kept on nodes\): its own cost \d\.\d{3}x the flat lower bound/,
    );
    assert.match(r.stderr, /--relaxed would plan: .* remote nodes per token/);
    const relaxed = await cli(["plan", "--loads", loads, ...shape, "--relaxed"]);
    assert.equal(JSON.parse(relaxed.stdout).metrics.hierarchy, undefined);
  });

  test("eval: --routing and --groups", async () => {
    const plan = file("plan.json", (await cli(["plan", "--loads", loads, ...shape])).stdout);
    const args = ["eval", "--loads", loads, "--placement", plan, "--gpus", "8", "--nodes", "2"];
    const r = await cli([...args, "--groups", "4", "--routing", routing, "--json"]);
    assert.equal(r.code, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.locality.routing.tokens, 3);
    assert.ok(report.hierarchy.lossWithin >= 1);
    const table = await cli([...args, "--groups", "4", "--routing", routing]);
    assert.match(table.stdout, /strict hierarchy/);
    assert.match(table.stdout, /remote nodes per token .* placement \d\.\d{3}/);
  });

  test("eval --groups of a placement that spreads a group over nodes: a note, no hierarchy figures", async () => {
    const plan = file(
      "relaxed.json",
      (await cli(["plan", "--loads", loads, ...shape, "--relaxed"])).stdout,
    );
    const args = ["eval", "--loads", loads, "--placement", plan, "--gpus", "8", "--nodes", "2"];
    const r = await cli([...args, "--groups", "4", "--json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).hierarchy, undefined);
    assert.match(r.stderr, /^note: layer \d+ spreads group \d+ over several nodes/);
  });

  test("report: a Dispatch locality section with the traffic heatmap", async () => {
    const html = file("r.html", "");
    const r = await cli([
      "report",
      "--loads",
      loads,
      ...shape,
      "--routing",
      routing,
      "--html",
      html,
    ]);
    assert.equal(r.code, 0, r.stderr);
    const page = (await import("node:fs")).readFileSync(html, "utf8");
    assert.match(page, /id="locality"/);
    assert.match(page, /class="chart traffic-heatmap"[^>]*data-nodes="2"/);
  });

  test("plan on SGLang dumps whose ranks recorded the same tokens: one warning for the loads, one for the routing", async () => {
    const planOn = (dumps: string) =>
      cli(["plan", "--loads", dumps, "--routing", dumps, ...shape20]);
    const r = await planOn("test/fixtures/engines/sglang/per_token_same_tokens");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).metrics.locality.routing, {
      tokens: 8,
      layers: 3,
      k: 8,
      sources: "spread",
    });
    const warnings = r.stderr.split("\n").filter((line) => line.startsWith("warning: "));
    assert.equal(warnings.length, 2, r.stderr);
    assert.match(warnings[0], /repeat another rank's record.*eplb counted each pass's tokens once/);
    assert.match(
      warnings[1],
      /repeat another rank's record.*eplb kept each token once, with no source rank/,
    );
    const fine = await planOn("test/fixtures/engines/sglang/per_token");
    assert.equal(fine.code, 0, fine.stderr);
    assert.doesNotMatch(fine.stderr, /warning/);
    assert.equal(JSON.parse(fine.stdout).metrics.locality.routing.sources, "ranks");
  });

  test("routing of other layers or experts is refused in one line, exit 2", () => {
    const wide = file("wide.npy", npyBytes("<i8", [1, 2, 1], [0, 12]));
    let r = spawnCli(["plan", "--loads", loads, ...shape, "--routing", wide]);
    assert.equal(r.code, 2);
    assert.match(
      r.stderr,
      /routing id at \[0, 1, 0\] is 12: ids must be -1 \(no choice\) or an expert of the loads, 0 \.\. 11\n$/,
    );
    assert.equal(r.stderr.split("\n").length, 2);
    const deep = file("deep.npy", npyBytes("<i8", [1, 3, 1], [0, 1, 2]));
    r = spawnCli(["plan", "--loads", loads, ...shape, "--routing", deep]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /routing has 3 layers, the loads 2/);
    r = spawnCli(["plan", "--loads", loads, ...shape, "--routing", "missing.npy"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /cannot read missing\.npy/);
  });
});

describe("simulate --routing", () => {
  // 6 steps x 1 layer x 4 experts, and 6 steps x 2 tokens x 1 layer x top-2
  const trace = file(
    "trace.npy",
    npyBytes(
      "<i8",
      [6, 1, 4],
      [4, 1, 1, 1, 4, 1, 1, 1, 1, 4, 1, 1, 1, 4, 1, 1, 1, 1, 4, 1, 1, 1, 4, 1],
    ),
  );
  const steps = file(
    "steps.npy",
    npyBytes(
      "<i4",
      [6, 2, 1, 2],
      Array.from({ length: 24 }, (_, i) => i % 4),
    ),
  );
  const args = [
    "simulate",
    "--trace",
    trace,
    "--replicas",
    "4",
    "--nodes",
    "2",
    "--gpus",
    "2",
    "--interval",
    "2",
  ];

  test("the table and the JSON gain each strategy's remote nodes per token", async () => {
    const r = await cli([...args, "--routing", steps]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /remote nodes per token \(docs\/locality\.md\):/);
    assert.match(r.stdout, /no balancing \(experts in order\)\s+\d\.\d{3}/);
    const j = JSON.parse((await cli([...args, "--routing", steps, "--json"])).stdout);
    assert.deepEqual(Object.keys(j.locality), ["routing", "eplb", "deepseek", "oracle", "none"]);
    assert.equal(j.locality.eplb.perStep.length, 4);
    // --steps slices the routing as it slices the trace
    const sliced = await cli([...args, "--routing", steps, "--steps", "2:", "--json"]);
    assert.equal(sliced.code, 0, sliced.stderr);
    assert.equal(JSON.parse(sliced.stdout).locality.eplb.perStep.length, 2);
  });

  test("SGLang per_token dumps: one step per forward pass, each token from its rank's node", async () => {
    const dumps = "test/fixtures/engines/sglang/per_token";
    const r = await cli([
      "simulate",
      "--trace",
      dumps,
      "--replicas",
      "20",
      "--groups",
      "4",
      "--nodes",
      "2",
      "--gpus",
      "4",
      "--interval",
      "1",
      "--routing",
      dumps,
      "--json",
    ]);
    assert.equal(r.code, 0, r.stderr);
    const l = JSON.parse(r.stdout).locality;
    assert.deepEqual(l.routing.sources, "ranks");
    assert.equal(l.routing.description, "10 tokens in 2 forward passes");
    assert.equal(l.eplb.perStep.length, 1);
  });

  test("SGLang dumps whose ranks recorded the same tokens (no DeepEP): each token once, sources spread, a warning", async () => {
    const dumps = "test/fixtures/engines/sglang/per_token_same_tokens";
    const r = await cli([
      ...["simulate", "--trace", dumps, ...shape20],
      ...["--interval", "1", "--routing", dumps, "--json"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    const l = JSON.parse(r.stdout).locality;
    assert.equal(l.routing.sources, "spread");
    assert.equal(l.routing.description, "8 tokens in 3 forward passes");
    assert.match(
      r.stderr,
      /^warning: .*_1\.pt: 3 records in 3 forward passes repeat another rank's record of the same pass \(SGLang without DeepEP routes every token on every rank\); eplb counted each pass's tokens once, not once per rank$/m,
    );
  });

  test("without --routing the output is unchanged", async () => {
    const r = await cli(args);
    assert.doesNotMatch(r.stdout, /remote nodes/);
  });

  test("a routing of other steps, or with --sweep, is refused", () => {
    const short = file("short.npy", npyBytes("<i4", [5, 1, 1, 1], [0, 1, 2, 3, 0]));
    let r = spawnCli([...args, "--routing", short]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /routing has 5 steps, the replayed trace 6/);
    r = spawnCli([...args, "--routing", steps, "--sweep", "interval=2,3"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--routing judges one run: it cannot be combined with --sweep/);
  });
});
