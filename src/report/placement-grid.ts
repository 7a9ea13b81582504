import { EplbInputError } from "../core/model/errors.js";
import { expertColor, groupColor, HOT_COLOR, MOVED_COLOR, textColorOn } from "./colors.js";
import {
  escapeXml,
  formatNumber,
  type LegendItem,
  legendRows,
  px,
  svgLegend,
  svgOpen,
} from "./svg.js";

/** Options of {@link svgPlacementGrid}. */
export interface PlacementGridOptions {
  numExperts: number;
  numGpus: number;
  /** Default 1; nodes are drawn as separate blocks. */
  numNodes?: number;
  /** Default 1; with more, the hue of a cell says its expert's group. */
  numGroups?: number;
  /** This layer's replica count per expert (for tooltips and bold labels). */
  logcnt?: ArrayLike<number>;
  /** This layer's load per expert (for tooltips). */
  expertLoads?: ArrayLike<number>;
  /** Why this layer is shown, e.g. "worst after EPLB". */
  reason?: string;
  /**
   * This layer's slots in the previous placement, when the grid shows a rebalance from it: slots
   * whose expert changed (each one a weight transfer) are outlined and say what they held.
   */
  previousSlots?: ArrayLike<number>;
  width?: number;
}

/** Width of one digit of a cell label (11 px font), with margin. */
const DIGIT_W = 6.6;
const MAX_CELL = 56;
const GAP = 14;

/**
 * The placement of one layer as a grid like DeepSeek's EPLB figure: one column per GPU, one cell
 * per slot, cells coloured by expert (hue = expert group) and labelled with the expert id when
 * it fits, nodes drawn as separate blocks (wrapped onto more rows when they do not fit the
 * width). A GPU holding two replicas of one expert has those cells outlined in red; an expert
 * with several replicas has a bold label. Every cell has a tooltip.
 *
 * @example
 * ```ts
 * svgPlacementGrid(0, [0, 1, 2, 0], { numExperts: 3, numGpus: 2 });
 * // '<svg ... class="chart placement-grid" ... data-cells="4" ...><rect ...><title>GPU 0, slot 0 (physical slot 0): expert 0</title></rect>...'
 * ```
 */
export function svgPlacementGrid(
  layer: number,
  slots: ArrayLike<number>,
  options: PlacementGridOptions,
): string {
  const width = options.width ?? 1120;
  const E = options.numExperts;
  const G = options.numGpus;
  const N = options.numNodes ?? 1;
  const groups = options.numGroups ?? 1;
  const P = slots.length;
  if (!(G >= 1) || P % G !== 0) {
    throw new EplbInputError("numGpus", G, `must divide the number of slots (${P})`);
  }
  if (!(N >= 1) || G % N !== 0)
    throw new EplbInputError("numNodes", N, `must divide numGpus (${G})`);
  const S = P / G;
  const gpn = G / N;
  const W = width - 32;
  const digits = String(Math.max(0, E - 1)).length;
  // Narrowest cell before blocks of GPUs wrap onto more rows: wide enough for the expert id.
  const minCell = Math.max(16, digits * DIGIT_W + 4);

  // Blocks: each node, split into chunks when one node is wider than the page.
  const maxCols = Math.max(1, Math.floor(W / minCell));
  const blocks: { node: number; first: number; cols: number; cont: boolean }[] = [];
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < gpn; g += maxCols) {
      blocks.push({ node: n, first: n * gpn + g, cols: Math.min(maxCols, gpn - g), cont: g > 0 });
    }
  }
  const gaps = (blocks.length - 1) * GAP;
  let perRow = blocks.length;
  let cellW = (W - gaps) / G;
  if (cellW < minCell) {
    const c = blocks[0].cols;
    perRow = Math.max(1, Math.floor((W + GAP) / (c * minCell + GAP)));
    cellW = (W - (perRow - 1) * GAP) / (perRow * c);
  }
  cellW = Math.min(MAX_CELL, cellW);
  const cellH = S <= 12 ? 22 : Math.max(4, Math.min(22, 480 / S));
  const labels = cellW - 3 >= digits * DIGIT_W && cellH >= 13;
  const gpuDigits = String(G - 1).length;
  const gpuLabelEvery = Math.max(1, Math.ceil(((gpuDigits + 0.5) * 6.2) / cellW));

  const legend: LegendItem[] = [];
  if (groups > 1 && E % groups === 0) {
    const per = E / groups;
    const shown = Math.min(groups, 16);
    for (let g = 0; g < shown; g++) {
      legend.push({
        name: `group ${g}: experts ${g * per}-${(g + 1) * per - 1}`,
        color: groupColor(g, groups),
      });
    }
    if (groups > shown) legend.push({ name: `... ${groups - shown} more groups`, color: "#ccc" });
  }
  const prev = options.previousSlots;
  if (prev && prev.length !== slots.length) {
    throw new EplbInputError(
      "previousSlots.length",
      prev.length,
      `must equal the layer's slots (${slots.length})`,
    );
  }
  if (prev)
    legend.push({ name: "slot changed (a weight transfer)", color: MOVED_COLOR, line: true });
  legend.push({ name: "two replicas of one expert on one GPU", color: HOT_COLOR, line: true });
  const legendH = legendRows(legend, W) * 20 + 8;

  const headH = N > 1 ? 18 : 0;
  const gpuH = 14;
  const blockH = headH + gpuH + S * cellH;
  const rows = Math.ceil(blocks.length / perRow);
  const height = Math.ceil(legendH + rows * blockH + (rows - 1) * 18 + 10);

  // Duplicates: a slot whose expert appears again on the same GPU.
  const dup = new Uint8Array(P);
  for (let g = 0; g < G; g++) {
    for (let i = 0; i < S; i++) {
      for (let j = i + 1; j < S; j++) {
        if (slots[g * S + i] === slots[g * S + j]) {
          dup[g * S + i] = 1;
          dup[g * S + j] = 1;
        }
      }
    }
  }
  let dupCount = 0;
  for (let i = 0; i < P; i++) dupCount += dup[i];
  let movedCount = 0;
  if (prev) for (let i = 0; i < P; i++) if (prev[i] !== slots[i]) movedCount++;

  const reason = options.reason ? ` (${options.reason})` : "";
  let out = svgOpen(
    width,
    height,
    `Layer ${layer}: placement of ${E} experts on ${G} GPUs x ${S} slots`,
    `Placement grid of layer ${layer}${reason}: ${N} node(s) of ${gpn} GPUs, one column per GPU ` +
      `and one cell per slot, coloured by expert${groups > 1 ? " (hue = expert group)" : ""}; ` +
      `${labels ? "cells show expert ids" : "cells are too small for labels, hover for ids"}; ` +
      `${dupCount} slots hold an expert that is already on their GPU` +
      `${prev ? `; ${movedCount} slots changed expert since the previous placement` : ""}.`,
    "placement-grid",
    ` data-layer="${layer}" data-cells="${P}" data-labels="${labels ? P : 0}" data-duplicates="${dupCount}"` +
      (prev ? ` data-moved="${movedCount}"` : ""),
  );
  out += svgLegend(legend, 16, 14, W);

  const cells: string[] = [];
  const texts: string[] = [];
  const heads: string[] = [];
  const fontSize = Math.min(11, cellH - 4);
  for (let bi = 0; bi < blocks.length; bi++) {
    const blk = blocks[bi];
    const row = Math.floor(bi / perRow);
    const col = bi % perRow;
    let bx = 16;
    for (let j = row * perRow; j < row * perRow + col; j++) bx += blocks[j].cols * cellW + GAP;
    const by = legendH + row * (blockH + 18);
    if (N > 1) {
      heads.push(
        `<text class="node" x="${px(bx)}" y="${px(by + 11)}">Node ${blk.node}${blk.cont ? " (cont.)" : ""}</text>`,
      );
      heads.push(
        `<rect class="node-box" x="${px(bx - 3)}" y="${px(by + headH - 2)}" width="${px(blk.cols * cellW + 6)}" height="${px(gpuH + S * cellH + 5)}" rx="4"/>`,
      );
    }
    for (let c = 0; c < blk.cols; c++) {
      const g = blk.first + c;
      const x = bx + c * cellW;
      if (g % gpuLabelEvery === 0) {
        heads.push(
          `<text class="gpu" x="${px(x + cellW / 2)}" y="${px(by + headH + 10)}" text-anchor="middle">${g}</text>`,
        );
      }
      for (let j = 0; j < S; j++) {
        const s = g * S + j;
        const e = slots[s];
        const y = by + headH + gpuH + j * cellH;
        const fill = expertColor(e, E, groups);
        const cnt = options.logcnt ? options.logcnt[e] : undefined;
        const load = options.expertLoads ? options.expertLoads[e] : undefined;
        let tip = `GPU ${g}${N > 1 ? ` (node ${Math.floor(g / gpn)})` : ""}, slot ${j} (physical slot ${s}): expert ${e}`;
        if (cnt !== undefined) tip += `, ${cnt} replica${cnt === 1 ? "" : "s"}`;
        if (load !== undefined) {
          tip += `, load ${formatNumber(load)}`;
          if (cnt !== undefined && cnt > 1) tip += ` (${formatNumber(load / cnt)} per replica)`;
        }
        const moved = prev !== undefined && prev[s] !== e;
        if (moved) tip += `; new here (held expert ${prev[s]} before)`;
        if (dup[s]) tip += "; another replica of it is on this GPU";
        const classes = [moved ? "moved" : "", dup[s] ? "dup" : ""].filter((c) => c !== "");
        const cls = classes.length > 0 ? ` class="${classes.join(" ")}"` : "";
        cells.push(
          `<rect${cls} x="${px(x + 0.5)}" y="${px(y + 0.5)}" width="${px(cellW - 1)}" height="${px(cellH - 1)}" fill="${fill}"><title>${escapeXml(tip)}</title></rect>`,
        );
        if (labels) {
          const bold = cnt !== undefined && cnt > 1 ? ` font-weight="700"` : "";
          texts.push(
            `<text x="${px(x + cellW / 2)}" y="${px(y + cellH / 2)}" fill="${textColorOn(fill)}"${bold}>${e}</text>`,
          );
        }
      }
    }
  }
  out += `<g class="heads">${heads.join("")}</g>`;
  out += `<g class="cells">${cells.join("")}</g>`;
  if (labels) {
    out += `<g class="cell-labels" font-size="${px(fontSize)}" text-anchor="middle" dominant-baseline="central">${texts.join("")}</g>`;
  }
  return `${out}</svg>`;
}
