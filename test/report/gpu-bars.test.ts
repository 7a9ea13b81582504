import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { AFTER_COLOR, BEFORE_COLOR, HOT_COLOR } from "../../src/report/colors.js";
import { svgGpuBars } from "../../src/report/gpu-bars.js";
import { assertSane, count } from "../helpers/svg.js";

/** `[height, tooltip]` of every bar in one panel ("before" or "after"). */
function bars(svg: string, panel: "before" | "after"): Array<[number, string]> {
  const inner = new RegExp(`data-panel="${panel}">(.*?)</g></g>`).exec(svg)?.[1] ?? "";
  return [...inner.matchAll(/<rect [^>]*height="([\d.]+)"[^>]*><title>([^<]*)<\/title>/g)].map(
    (m) => [Number(m[1]), m[2]],
  );
}

describe("svgGpuBars", () => {
  it("draws a bar per GPU in both panels and marks the busiest in red", () => {
    const svg = svgGpuBars(3, [10, 2, 3, 1], [4, 4, 5, 3], { lowerBound: 4, gpusPerNode: 2 });
    assertSane(svg);
    assert.match(svg, /data-bars="8"/);
    const before = /data-panel="before">(.*?)<\/g><\/g>/.exec(svg)?.[1] ?? "";
    assert.equal(count(before, "<rect "), 4);
    assert.match(svg, new RegExp(`fill="${HOT_COLOR}"><title>GPU 0 \\(node 0\\): 10`));
    assert.match(svg, new RegExp(`fill="${HOT_COLOR}"><title>GPU 2 \\(node 1\\): 5`));
    assert.match(svg, /lower bound 4/);
    assert.equal(count(svg, 'class="sep"'), 2, "one node separator per panel");
  });

  it("bins thousands of GPUs into the busiest of each run and says so", () => {
    const n = 2048;
    const before = Array.from({ length: n }, (_, i) => (i === 1234 ? 99 : 1));
    const svg = svgGpuBars(0, before, before, { width: 1120 });
    assertSane(svg);
    assert.match(svg, /busiest of \d+ consecutive GPUs/);
    const bars = Number(/data-bars="(\d+)"/.exec(svg)?.[1]);
    assert.ok(bars < n, `${bars} bars for ${n} GPUs`);
    assert.match(svg, /: 99, /, "the hot GPU survives binning");
  });

  it("survives a layer with zero load and no lower bound", () => {
    const svg = svgGpuBars(0, [0, 0, 0], [0, 0, 0]);
    assertSane(svg);
    assert.doesNotMatch(svg, /lower bound/);
  });

  it("draws both panels on one scale: bar heights proportional to the loads", () => {
    const svg = svgGpuBars(1, [8, 2, 4, 6], [5, 5, 6, 4]);
    assertSane(svg);
    const all = [...bars(svg, "before"), ...bars(svg, "after")];
    const loads = [8, 2, 4, 6, 5, 5, 6, 4];
    assert.equal(all.length, loads.length);
    for (let i = 0; i < loads.length; i++) {
      // Heights are rounded to the pixel's tenth or so: compare to the tallest bar's height.
      assert.ok(Math.abs(all[i][0] / all[0][0] - loads[i] / 8) < 0.01, `bar ${i}: ${all[i][0]}`);
    }
    assert.match(svg, new RegExp(`fill="${BEFORE_COLOR}"`));
    assert.match(svg, new RegExp(`fill="${AFTER_COLOR}"`));
  });

  it("marks exactly one busiest bar per panel, the first of equal maxima", () => {
    const svg = svgGpuBars(0, [3, 9, 9, 1], [5, 5, 5, 5]);
    assert.equal(count(svg, `fill="${HOT_COLOR}"><title>`), 2);
    assert.match(svg, new RegExp(`fill="${HOT_COLOR}"><title>GPU 1: 9`));
    assert.match(svg, new RegExp(`fill="${HOT_COLOR}"><title>GPU 0: 5`));
  });

  it("gives each GPU its load and its multiple of the mean GPU load after EPLB", () => {
    // Before and after differ in total (a plan may serve other loads): the mean is after's.
    const svg = svgGpuBars(2, [12, 4, 0, 0], [3, 3, 3, 3]);
    const tips = bars(svg, "before").map(([, t]) => t);
    assert.deepEqual(tips, [
      "GPU 0: 12, 4x mean",
      "GPU 1: 4, 1.33x mean",
      "GPU 2: 0, 0x mean",
      "GPU 3: 0, 0x mean",
    ]);
    assert.match(svg, /mean 3/);
    assert.match(svg, /data-layer="2"/);
    assert.match(svg, /aria-label="Layer 2: load per GPU before and after EPLB"/);
  });

  it("escapes the reason it was picked for", () => {
    const svg = svgGpuBars(0, [1, 2], [2, 1], { reason: `<script>"x"</script>` });
    assertSane(svg);
    assert.doesNotMatch(svg, /<script/);
    assert.match(svg, /\(&lt;script&gt;&quot;x&quot;&lt;\/script&gt;\)/);
  });

  it("names the GPU range of a binned bar and keeps each bin's busiest GPU", () => {
    const n = 1024;
    const before = Array.from({ length: n }, (_, i) => i % 97);
    const svg = svgGpuBars(0, before, before);
    const k = Number(/busiest of (\d+) consecutive GPUs/.exec(svg)?.[1]);
    assert.ok(k > 1);
    const b = bars(svg, "before");
    assert.equal(b.length, Math.ceil(n / k));
    for (let i = 0; i < b.length; i++) {
      const last = Math.min(n, (i + 1) * k) - 1;
      const busiest = Math.max(...before.slice(i * k, last + 1));
      assert.ok(b[i][1].startsWith(`GPUs ${i * k}-${last} (busiest): ${busiest},`), b[i][1]);
    }
  });
});
