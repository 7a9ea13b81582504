// `node dist/bench/simulate-locality-case.js DIR [SEED]`: writes the medium synthetic case of
// docs/locality.md ("In a replay") to DIR: routing<SEED>.npy, [40 steps, 2000 tokens, 4 layers,
// top-6] of 64 experts (synthRouting, seed SEED), and trace<SEED>.npy, the same choices counted
// per step, layer and expert, so loads and routing agree. Then:
//   eplb simulate --trace DIR/trace1.npy --routing DIR/routing1.npy --replicas 80 --nodes 8 \
//     --gpus 16 --interval 10 [--locality]
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { routedTrace } from "../test/helpers/routed-trace.js";
import { npyBytes } from "../test/io/support.js";

const [dir, seedArg] = process.argv.slice(2);
if (!dir) throw new Error("usage: simulate-locality-case.js DIR [SEED]");
const seed = Number(seedArg ?? 1);
const [S, T, L, E, k] = [40, 2000, 4, 64, 6];
const { trace, steps } = routedTrace({ steps: S, tokens: T, layers: L, experts: E, k, seed });
writeFileSync(join(dir, `trace${seed}.npy`), npyBytes("<f8", [S, L, E], Array.from(trace.data)));
const ids: number[] = [];
for (const s of steps) for (const v of s.topk) ids.push(v);
writeFileSync(join(dir, `routing${seed}.npy`), npyBytes("<i4", [S, T, L, k], ids));
