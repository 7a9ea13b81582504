import { ScopeWorkspace } from "../../src/core/blocks/scope.js";
import type { Random } from "../../src/index.js";

/**
 * A random scope (not packed): G GPUs of S slots, n experts with ties among their weights,
 * counts summing to G * S; with homes, nodes of 1-3 GPUs each homing at most its slots' worth.
 *
 * @example
 * ```ts
 * const ws = randomScope(new Random(1), true);
 * packScope(ws);
 * ```
 */
export function randomScope(rng: Random, withHomes: boolean): ScopeWorkspace {
  const nodes = withHomes ? 1 + rng.int(3) : 1;
  const gpn = 1 + rng.int(3);
  const G = withHomes ? nodes * gpn : 1 + rng.int(8);
  const S = 1 + rng.int(4);
  // With homes each node homes at most its slots' worth of experts.
  const perNode = withHomes ? 1 + rng.int(gpn * S) : 0;
  const n = withHomes ? nodes * perNode : 1 + rng.int(G * S);
  const ws = new ScopeWorkspace();
  ws.reset(n, G, S, withHomes ? gpn : 0);
  ws.count.fill(1, 0, n);
  for (let extra = G * S - n; extra > 0; extra--) ws.count[rng.int(n)]++;
  for (let e = 0; e < n; e++) {
    ws.weight[e] = rng.int(5) === 0 ? 10 : Math.round(rng.lognormal(1) * 30);
    if (withHomes) ws.home[e] = Math.floor(e / perNode);
  }
  return ws;
}
