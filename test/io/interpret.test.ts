import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { statedGpuCount } from "../../src/io/interpret.js";

describe("statedGpuCount", () => {
  test("a vllm-ascend expert map states its devices: one device list per GPU", () => {
    const device = { device_id: 0, device_expert: [0, 1] };
    assert.equal(statedGpuCount({ layer_list: [{ device_list: [device, device, device] }] }), 3);
    assert.equal(statedGpuCount({ layer_list: [{ device_count: 4 }] }), 4);
  });

  test("other layouts, or no positive integer count: undefined", () => {
    assert.equal(statedGpuCount({ phy2log: [[0, 1]] }), undefined);
    assert.equal(statedGpuCount([[0, 1]]), undefined);
    assert.equal(statedGpuCount({ layer_list: [] }), undefined);
    assert.equal(statedGpuCount({ layer_list: [{ device_list: [] }] }), undefined);
    assert.equal(statedGpuCount({ layer_list: [{ device_count: 2.5 }] }), undefined);
  });
});
