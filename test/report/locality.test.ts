import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { svgTrafficHeatmap } from "../../src/report/locality.js";

describe("svgTrafficHeatmap", () => {
  test("a cell per node pair, the diagonal grey, counts written up to 16 nodes", () => {
    const svg = svgTrafficHeatmap(
      [
        [0, 4, 2],
        [1, 0, 0],
        [3, 3, 0],
      ],
      "Traffic <a>",
    );
    assert.match(svg, /data-nodes="3" data-cells="3" data-bin-nodes="1"/);
    assert.match(svg, /aria-label="Traffic &lt;a&gt;"/);
    assert.match(svg, /class="diagonal"[^>]*d="M0 0h1v1h-1zM1 1h1v1h-1zM2 2h1v1h-1z"/);
    // the six off-diagonal counts (the other three centred numbers are the x axis labels)
    assert.equal(
      (svg.match(/<text [^>]*text-anchor="middle"[^>]*>\d+<\/text>/g) ?? []).length - 3,
      6,
    );
  });

  test("beyond 64 nodes blocks of nodes are summed, and no counts are written", () => {
    const n = 100;
    const traffic = Array.from({ length: n }, (_, s) =>
      Array.from({ length: n }, (_, d) => (s === d ? 0 : 1)),
    );
    const svg = svgTrafficHeatmap(traffic, "Traffic");
    assert.match(svg, /data-nodes="100" data-cells="50" data-bin-nodes="2"/);
    assert.match(svg, /Each cell sums 2 x 2 nodes\./);
    assert.doesNotMatch(svg, /class="diagonal"/);
  });
});
