/**
 * The per-token routing in SGLang `per_token` dumps, as logical experts: which experts each
 * token chose in each layer, and the rank it was served on (placement by co-activation and
 * locality needs both).
 */
import { requireDistinctFiles } from "./distinct-files.js";
import { EplbFormatError } from "./errors.js";
import { readValue } from "./read.js";
import { OtherScopes, readSglangPassDump, sglangDumpKind } from "./sglang.js";
import { RepeatedRecords, recordFingerprint } from "./sglang-repeats.js";
import { expandLoadPath } from "./sources.js";
import type { Tensor } from "./tensor.js";

/** Tokens' logical top-k choices per layer, flat and row-major. */
export interface TokenRouting {
  readonly tokens: number;
  readonly layers: number;
  /** Choices per token and layer (older SGLang records 8 columns, newer the model's top-k; unused ones are -1). */
  readonly k: number;
  /** Logical experts per layer (the largest id of the dumps' maps + 1). */
  readonly experts: number;
  /**
   * `topk[(t * layers + l) * k + j]`: the logical expert of token `t`'s `j`-th choice in layer
   * `l`, or -1 where the engine recorded none.
   */
  readonly topk: Int32Array;
  /** The rank (DP/EP rank of the dump) each token was recorded on. */
  readonly rank: Int32Array;
  /** The forward pass each token belonged to. */
  readonly forwardPassId: Float64Array;
  /**
   * The warning when records repeating another rank's record of the same pass were skipped
   * (SGLang without DeepEP routes every token on every rank): the tokens are then each read
   * once, and no rank is their source (`rank` is still the rank of the copy kept).
   */
  readonly repeated?: string;
  /** The warning when records of a scope other than `"primary"` (draft passes) were left out. */
  readonly otherScopes?: string;
}

/**
 * Reads the per-token routing of SGLang `per_token` dumps (one file per rank, or a folder of
 * them): tokens in file order, then record order, then token order; physical slot ids mapped to
 * logical experts through each file's `last_physical_to_logical_map`. A record whose logical
 * top-k repeats another rank's record of the same forward pass is the same tokens (SGLang
 * without DeepEP routes every token on every rank) and is skipped, said in `repeated`.
 *
 * @param paths `per_token` dump files or folders of them
 * @returns the routing of every token
 * @throws EplbFormatError for a file that is not a per_token dump or dumps of different shapes
 * @example
 * ```ts
 * const r = readRouting(["per_token/"]); // the rank files of a per_token recording
 * r.topk[(0 * r.layers + 2) * r.k]; // token 0's first expert in layer 2
 * ```
 */
export function readRouting(paths: string | readonly string[]): TokenRouting {
  const files = (typeof paths === "string" ? [paths] : paths).flatMap(expandLoadPath);
  requireDistinctFiles(files, "its tokens");
  const chunks: { topk: Int32Array; rank: number; id: number; tokens: number }[] = [];
  let shape: { layers: number; k: number; experts: number } | undefined;
  const repeats = new RepeatedRecords();
  const scopes = new OtherScopes();
  for (const file of files) {
    const { value } = readValue(file);
    if (sglangDumpKind(value) !== "per_token") {
      throw new EplbFormatError(
        file,
        "has no per-token routing: it is not an SGLang dump recorded with --expert-distribution-recorder-mode per_token",
      );
    }
    const dump = readSglangPassDump(value, file, Number.MAX_SAFE_INTEGER);
    scopes.add(dump, file);
    const p2l = dump.map.phy2log;
    dump.passes.forEach((pass, i) => {
      const t = pass.topk as Tensor; // every per_token record has one (checked when read)
      const [layers, tokens, k] = t.shape;
      if (!shape) shape = { layers, k, experts: dump.experts };
      if (layers !== shape.layers || k !== shape.k || dump.experts !== shape.experts) {
        throw new EplbFormatError(
          file,
          `records[${i}] has ${layers} layers x ${k} choices of ${dump.experts} experts, unlike the first record read (${shape.layers} x ${shape.k} of ${shape.experts})`,
        );
      }
      if (repeats.repeats(pass, recordFingerprint(pass, p2l, dump.slots), file)) return;
      const out = new Int32Array(tokens * layers * k);
      for (let l = 0; l < layers; l++) {
        for (let tok = 0; tok < tokens; tok++) {
          for (let j = 0; j < k; j++) {
            const s = t.data[(l * tokens + tok) * k + j];
            out[(tok * layers + l) * k + j] = s === -1 ? -1 : p2l[l * dump.slots + s];
          }
        }
      }
      chunks.push({ topk: out, rank: pass.rank, id: pass.forwardPassId, tokens });
    });
  }
  const { layers, k, experts } = shape ?? { layers: 0, k: 0, experts: 0 };
  const tokens = chunks.reduce((n, c) => n + c.tokens, 0);
  const topk = new Int32Array(tokens * layers * k);
  const rank = new Int32Array(tokens);
  const forwardPassId = new Float64Array(tokens);
  let at = 0;
  for (const c of chunks) {
    topk.set(c.topk, at * layers * k);
    rank.fill(c.rank, at, at + c.tokens);
    forwardPassId.fill(c.id, at, at + c.tokens);
    at += c.tokens;
  }
  const repeated = repeats.warning("routing");
  const otherScopes = scopes.warning();
  return {
    tokens,
    layers,
    k,
    experts,
    topk,
    rank,
    forwardPassId,
    ...(repeated ? { repeated } : {}),
    ...(otherScopes ? { otherScopes } : {}),
  };
}
