import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import {
  expertColor,
  groupColor,
  HEAT_COLORS,
  HEAT_EDGES,
  heatBin,
  hslToHex,
  textColorOn,
} from "../../src/report/colors.js";

/** WCAG relative luminance of `#rrggbb` or `#rgb`, written out plainly. */
function luminance(hex: string): number {
  const h = hex.length === 4 ? [...hex.slice(1)].map((c) => c + c).join("") : hex.slice(1);
  const channel = (i: number) => {
    const v = Number.parseInt(h.slice(2 * i, 2 * i + 2), 16) / 255;
    return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * channel(0) + 0.7152 * channel(1) + 0.0722 * channel(2);
}

function contrast(a: string, b: string): number {
  const [x, y] = [luminance(a), luminance(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

/** Hue in degrees of `#rrggbb` (NaN for a grey). */
function hue(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => Number.parseInt(hex.slice(i, i + 2), 16) / 255);
  const max = Math.max(r, g, b);
  const d = max - Math.min(r, g, b);
  if (d === 0) return Number.NaN;
  const h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  return (h * 60 + 360) % 360;
}

const HEX = /^#[0-9a-f]{6}$/;

describe("hslToHex", () => {
  it("gives the primaries, black and white", () => {
    assert.equal(hslToHex(0, 100, 50), "#ff0000");
    assert.equal(hslToHex(120, 100, 50), "#00ff00");
    assert.equal(hslToHex(240, 100, 50), "#0000ff");
    assert.equal(hslToHex(0, 0, 100), "#ffffff");
    assert.equal(hslToHex(0, 0, 0), "#000000");
    assert.equal(hslToHex(0, 0, 50), "#808080");
  });

  it("always gives #rrggbb, whose hue is the one asked for when saturated", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 359 }), fc.integer({ min: 30, max: 70 }), (h, l) => {
        const c = hslToHex(h, 100, l);
        assert.match(c, HEX);
        // Rounding to 8 bits moves the hue by at most a degree or two.
        const d = Math.abs(hue(c) - h);
        assert.ok(Math.min(d, 360 - d) < 2.5, `${c}: hue ${hue(c)} for ${h}`);
      }),
    );
  });
});

describe("expertColor and groupColor", () => {
  it("with groups: one hue per group, different hues across groups", () => {
    const E = 64;
    const G = 8;
    const per = E / G;
    const hues = Array.from({ length: G }, (_, g) => hue(groupColor(g, G)));
    for (let e = 0; e < E; e++) {
      const c = expertColor(e, E, G);
      assert.match(c, HEX);
      const g = Math.floor(e / per);
      const d = Math.abs(hue(c) - hues[g]);
      assert.ok(Math.min(d, 360 - d) < 4, `expert ${e} (group ${g}): hue ${hue(c)} vs ${hues[g]}`);
    }
    for (let g = 1; g < G; g++) {
      const d = Math.abs(hues[g] - hues[g - 1]);
      assert.ok(Math.min(d, 360 - d) > 30, `groups ${g - 1} and ${g} look alike`);
    }
  });

  it("inside a group and without groups, neighbouring ids get different fills", () => {
    for (const [E, G] of [
      [64, 8],
      [256, 1],
      [10, 3], // 3 does not divide 10: no groups
    ]) {
      for (let e = 1; e < E; e++) {
        assert.notEqual(expertColor(e, E, G), expertColor(e - 1, E, G), `${e} of ${E}, ${G}`);
      }
    }
  });

  it("a group that does not divide the experts is ignored, as if no groups", () => {
    for (let e = 0; e < 10; e++) assert.equal(expertColor(e, 10, 3), expertColor(e, 10, 1));
  });
});

describe("textColorOn", () => {
  it("picks the readable text colour", () => {
    assert.equal(textColorOn("#ffff00"), "#111");
    assert.equal(textColorOn("#202060"), "#fff");
    assert.equal(textColorOn("#000000"), "#fff");
    assert.equal(textColorOn("#ffffff"), "#111");
  });

  it("picks whichever of black and white contrasts more with the fill (WCAG)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffff }), (n) => {
        const fill = `#${n.toString(16).padStart(6, "0")}`;
        const text = textColorOn(fill);
        const other = text === "#111" ? "#fff" : "#111";
        // #111 is not pure black: compare against pure black/white as the rule does, with slack.
        const pure = text === "#111" ? "#000000" : "#ffffff";
        const pureOther = other === "#111" ? "#000000" : "#ffffff";
        assert.ok(contrast(fill, pure) >= contrast(fill, pureOther) - 1e-9, fill);
      }),
      { seed: 15, numRuns: 500 },
    );
  });
});

describe("the heat scale", () => {
  it("has one colour per bin, one bin more than the edges, and increasing edges", () => {
    assert.equal(HEAT_COLORS.length, HEAT_EDGES.length + 1);
    for (let i = 1; i < HEAT_EDGES.length; i++) assert.ok(HEAT_EDGES[i] > HEAT_EDGES[i - 1]);
    assert.equal(HEAT_EDGES[3], 1, "the mean (1x) is an edge: below and above it differ");
  });

  it("gets darker with load: luminance strictly decreasing bin by bin", () => {
    for (let b = 1; b < HEAT_COLORS.length; b++) {
      assert.ok(
        luminance(HEAT_COLORS[b]) < luminance(HEAT_COLORS[b - 1]),
        `bin ${b} (${HEAT_COLORS[b]}) is not darker than bin ${b - 1}`,
      );
    }
  });

  it("bins a relative load by its edges: lower edge inclusive, upper exclusive", () => {
    assert.equal(heatBin(0), 0);
    assert.equal(heatBin(0.2499), 0);
    assert.equal(heatBin(0.25), 1);
    assert.equal(heatBin(0.999), 3);
    assert.equal(heatBin(1), 4);
    assert.equal(heatBin(4.99), 7);
    assert.equal(heatBin(5), 8);
    assert.equal(heatBin(1e9), HEAT_EDGES.length);
    fc.assert(
      fc.property(fc.double({ min: 0, max: 20, noNaN: true }), (x) => {
        const b = heatBin(x);
        assert.ok(b === 0 || x >= HEAT_EDGES[b - 1]);
        assert.ok(b === HEAT_EDGES.length || x < HEAT_EDGES[b]);
      }),
    );
  });

  it("is monotone: more load never gets a lighter colour", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 20, noNaN: true }),
        fc.double({ min: 0, max: 20, noNaN: true }),
        (x, y) => {
          const [lo, hi] = x <= y ? [x, y] : [y, x];
          assert.ok(heatBin(lo) <= heatBin(hi));
        },
      ),
    );
  });
});
