import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { CountsWorkspace } from "../../../../src/core/blocks/counts/workspace.js";

describe("CountsWorkspace", () => {
  test("starts empty with no work spent", () => {
    const ws = new CountsWorkspace();
    assert.equal(ws.work, 0);
    assert.equal(ws.seen.size, 0);
    assert.equal(ws.trial.length, 0);
  });

  test("ensure grows each buffer to its size (experts, slots, GPUs) and keeps it for smaller problems", () => {
    const ws = new CountsWorkspace();
    ws.ensure(10, 24, 6);
    assert.deepEqual(
      [
        ws.trial.length,
        ws.replicaLoad.length,
        ws.itemExpert.length,
        ws.hot.length,
        ws.gpuHeap.length,
        ws.gpuLoad.length,
      ],
      [10, 10, 24, 24, 6, 6],
    );
    const { trial, hot, gpuLoad } = ws;
    ws.ensure(10, 24, 6);
    ws.ensure(3, 5, 2);
    // Same buffers: a policy planning layer after layer allocates once.
    assert.equal(ws.trial, trial);
    assert.equal(ws.hot, hot);
    assert.equal(ws.gpuLoad, gpuLoad);
    ws.ensure(11, 24, 7);
    assert.equal(ws.trial.length, 11);
    assert.equal(ws.hot, hot);
    assert.equal(ws.gpuLoad.length, 7);
  });

  test("ensureBeam sizes the beam for width vectors and keeps it for narrower ones", () => {
    const ws = new CountsWorkspace();
    ws.ensureBeam(8, 4);
    assert.equal(ws.beam.length, 32);
    assert.equal(ws.nextBeamOrder.length, 32);
    assert.equal(ws.childValue.length, 4);
    assert.equal(ws.zobrist.length, 16);
    const { beam, zobrist, childValue } = ws;
    ws.ensureBeam(8, 4);
    ws.ensureBeam(4, 2);
    assert.equal(ws.beam, beam);
    assert.equal(ws.zobrist, zobrist);
    assert.equal(ws.childValue, childValue);
  });

  test("the hash constants are fixed 26-bit values, the same in every workspace (deterministic searches)", () => {
    const a = new CountsWorkspace();
    const b = new CountsWorkspace();
    a.ensureBeam(50, 1);
    b.ensureBeam(5, 1);
    b.ensureBeam(50, 1);
    assert.deepEqual(a.zobrist, b.zobrist);
    assert.ok(a.zobrist.every((z) => z >= 0 && z < 2 ** 26));
    assert.equal(new Set(a.zobrist).size, 100);
  });
});
