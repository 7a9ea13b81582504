/**
 * Records that several ranks of an SGLang `per_pass` / `per_token` recording hold alike.
 *
 * SGLang records, on every rank, the top-k of the tokens that rank's MoE layer routes
 * (`on_select_experts` in `python/sglang/srt/layers/moe/topk.py`). Without an all-to-all MoE
 * backend (`--moe-a2a-backend none`, the default: TP MoE, or EP MoE without DeepEP), every rank
 * routes the same tokens: the MoE input is `ScatterMode.FULL`, the whole batch (with DP
 * attention, every DP rank's tokens gathered) on every rank (`_compute_mlp_mode` /
 * `sparse_mlp_scatter_mode` in `python/sglang/srt/layers/communicator.py`), so each rank's record
 * of a forward pass holds the same tokens. With DeepEP (`ScatterMode.SCATTERED`) each rank routes
 * only its own tokens. SGLang itself sums such records (its `stat` dump all-reduces them), which
 * only scales its loads; eplb counts a pass's tokens once (see docs/engines.md).
 *
 * Records are compared by a fingerprint of their *logical* content (the physical slot a rank
 * dispatches a choice to may differ between ranks: SGLang's `static` and `dynamic` dispatch pick
 * a replica per rank), so duplicates are found whatever the replicas chosen.
 */
import type { SglangPass } from "./sglang.js";

/**
 * A fingerprint of a record's logical content: for a `per_token` record its top-k folded to
 * logical experts (`-1` kept) in token order, for a `per_pass` record its logical counts.
 * Null for a record of no token (an idle rank's records are alike without being the same tokens).
 *
 * @param pass the record, as read by `readSglangPassDump`
 * @param phy2log the dump's `last_physical_to_logical_map`, `[layers, slots]` row-major
 * @param slots slots per layer of that map
 * @returns a string equal for records of equal content (two independent 32-bit hashes and the
 *   length), or null
 * @example
 * ```ts
 * const dump = readSglangPassDump(readValue("dump_0.pt").value, "dump_0.pt", 1e9);
 * const [a, b] = dump.passes.map((p) => recordFingerprint(p, dump.map.phy2log, dump.slots));
 * a === b; // false (two passes of other tokens)
 * ```
 */
export function recordFingerprint(
  pass: SglangPass,
  phy2log: Int32Array,
  slots: number,
): string | null {
  const h = new PairHash();
  let named = false;
  if (pass.topk) {
    const [layers, tokens, k] = pass.topk.shape;
    const ids = pass.topk.data;
    h.add(tokens);
    h.add(k);
    // Token order, as readRouting lays tokens out: token t's choices over every layer.
    for (let t = 0; t < tokens; t++) {
      for (let l = 0; l < layers; l++) {
        for (let j = 0; j < k; j++) {
          const s = ids[(l * tokens + t) * k + j];
          const e = s === -1 ? -1 : phy2log[l * slots + s];
          if (e !== -1) named = true;
          h.add(e);
        }
      }
    }
  } else {
    for (const v of pass.loads) {
      if (v !== 0) named = true;
      h.add(v);
    }
  }
  return named ? h.digest() : null;
}

const F64 = new Float64Array(1);
const WORDS = new Uint32Array(F64.buffer);

/** Two FNV-1a-style 32-bit hashes of different primes over the values' bits, and the count. */
class PairHash {
  private a = 0x811c9dc5;
  private b = 0x2545f491;
  private n = 0;

  add(v: number): void {
    F64[0] = v;
    const lo = WORDS[0];
    const hi = WORDS[1];
    this.a = Math.imul(this.a ^ lo, 0x01000193);
    this.a = Math.imul(this.a ^ hi, 0x01000193);
    this.b = Math.imul(this.b ^ lo, 0x5bd1e995);
    this.b = Math.imul(this.b ^ (this.b >>> 15) ^ hi, 0x5bd1e995);
    this.n++;
  }

  digest(): string {
    return `${(this.a >>> 0).toString(16)}:${(this.b >>> 0).toString(16)}:${this.n}`;
  }
}

/**
 * Tracks, over the dumps of one recording, the records that repeat another rank's record of the
 * same forward pass, so that the readers count those tokens once.
 *
 * @example
 * ```ts
 * const repeats = new RepeatedRecords();
 * for (const f of ["dump_0.pt", "dump_1.pt"]) {
 *   const dump = readSglangPassDump(readValue(f).value, f, 1e9);
 *   for (const p of dump.passes) {
 *     if (repeats.repeats(p, recordFingerprint(p, dump.map.phy2log, dump.slots), f)) continue;
 *     // ... count p
 *   }
 * }
 * repeats.records; // 0 (each rank recorded its own tokens: no warning)
 * ```
 */
export class RepeatedRecords {
  /** Records skipped as repeats. */
  records = 0;
  /** The forward passes that had a repeat. */
  readonly passes = new Set<number>();
  /** The files that held a repeat, in the order met. */
  readonly files: string[] = [];
  private readonly seen = new Map<number, Map<string, number>>();

  /**
   * Whether `pass` repeats a record of another rank for the same forward pass (then it is
   * counted as a repeat, and the caller skips it); otherwise its fingerprint is remembered.
   *
   * @param pass the record
   * @param fingerprint its {@link recordFingerprint}; null (no token) never repeats
   * @param file the file it came from, for the warning
   * @returns true for a repeat
   */
  repeats(pass: SglangPass, fingerprint: string | null, file: string): boolean {
    if (fingerprint === null) return false;
    let prints = this.seen.get(pass.forwardPassId);
    if (!prints) {
      prints = new Map();
      this.seen.set(pass.forwardPassId, prints);
    }
    const rank = prints.get(fingerprint);
    if (rank === undefined) {
      prints.set(fingerprint, pass.rank);
      return false;
    }
    if (rank === pass.rank) return false;
    this.records++;
    this.passes.add(pass.forwardPassId);
    if (!this.files.includes(file)) this.files.push(file);
    return true;
  }

  /**
   * The one-line warning for what was skipped, or undefined when nothing was.
   *
   * @param what `loads` (counts and traces) or `routing` (tokens, whose source rank is dropped)
   * @returns the warning text, without the `warning: ` prefix
   */
  warning(what: "loads" | "routing"): string | undefined {
    if (this.records === 0) return undefined;
    const f = this.files;
    const where = f.length === 1 ? f[0] : `${f.length} files (${f[0]}, ...)`;
    const did =
      what === "loads"
        ? "eplb counted each pass's tokens once, not once per rank"
        : "eplb kept each token once, with no source rank (sources spread, as for a .npy routing)";
    return (
      `${where}: ${this.records} record${this.records === 1 ? "" : "s"} in ${this.passes.size} forward pass${this.passes.size === 1 ? "" : "es"} ` +
      "repeat another rank's record of the same pass (SGLang without DeepEP routes every token on every rank); " +
      did
    );
  }
}
