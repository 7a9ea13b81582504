import assert from "node:assert/strict";

/**
 * Occurrences of `needle` (a string read as a regular expression, or a RegExp) in `text`.
 *
 * @example
 * ```ts
 * count("<rect/><rect/>", "<rect"); // 2
 * ```
 */
export function count(text: string, needle: string | RegExp): number {
  return (text.match(new RegExp(needle, "g")) ?? []).length;
}

/**
 * The markup inside the first `<g class="NAME" ...>...</g>` that has no nested groups.
 *
 * @example
 * ```ts
 * group('<g class="cells"><rect/></g>', "cells"); // "<rect/>"
 * ```
 */
export function group(svg: string, cls: string): string {
  const m = new RegExp(`<g class="${cls}"[^>]*>(.*?)</g>`).exec(svg);
  assert.ok(m, `no <g class="${cls}">`);
  return m[1];
}

/**
 * Well-formedness checks every SVG builder's output must pass: one balanced `<svg>`, an
 * accessible name and description, balanced groups, and no NaN/Infinity/undefined leaking in.
 *
 * @example
 * ```ts
 * assertSane(svgHeatmap({ layers: 1, experts: 2, data: new Float64Array([1, 2]) }));
 * ```
 */
export function assertSane(svg: string): void {
  assert.ok(svg.startsWith("<svg "), "starts with <svg");
  assert.ok(svg.endsWith("</svg>"), "ends with </svg>");
  assert.doesNotMatch(svg, /NaN|Infinity|undefined/, "no NaN/Infinity/undefined leaks");
  assert.match(svg, /role="img"/);
  assert.match(svg, /aria-label="[^"]+"/);
  assert.match(svg, /<title>[^<]+<\/title><desc>[^<]+<\/desc>/);
  assert.equal(count(svg, "<svg"), count(svg, "</svg>"));
  assert.equal(count(svg, "<g[ >]"), count(svg, "</g>"), "balanced groups");
}
