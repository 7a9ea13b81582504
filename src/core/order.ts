/**
 * Index orderings for the hot loops, without comparator callbacks.
 *
 * A comparator sort over an index array costs a closure call per comparison. Instead each weight
 * is mapped to a 31-bit unsigned key whose ascending order is the weights' descending order (for
 * non-negative float32 values the IEEE bit pattern is monotone in the value), and the indices are
 * sorted by an LSD radix sort over 8-bit digits. Radix sort is stable, so equal weights keep
 * ascending index order: exactly the tie-break the reference port documents.
 */

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);
const RADIX = 256;

/** Reusable buffers for {@link orderDescending}; grows to the largest size seen. */
export class OrderWorkspace {
  keys = new Uint32Array(0);
  keysAlt = new Uint32Array(0);
  indexAlt = new Int32Array(0);
  readonly histogram = new Int32Array(4 * RADIX);

  ensure(n: number): void {
    if (this.keys.length < n) {
      this.keys = new Uint32Array(n);
      this.keysAlt = new Uint32Array(n);
      this.indexAlt = new Int32Array(n);
    }
  }
}

/**
 * Writes into `order[0..n)` the indices of `weights[0..n)` sorted by weight **descending**,
 * equal weights by **ascending index** (the deterministic tie-break documented for the reference
 * port). Weights are compared as float32 (rounded with `Math.fround`), which is what the
 * reference sorts; they must be non-negative.
 *
 * @example
 * ```ts
 * const order = new Int32Array(4);
 * orderDescending(new Float64Array([1, 3, 3, 2]), 4, order);
 * // order = Int32Array [1, 2, 3, 0]
 * ```
 */
export function orderDescending(
  weights: ArrayLike<number>,
  n: number,
  order: Int32Array,
  workspace: OrderWorkspace = new OrderWorkspace(),
): void {
  workspace.ensure(n);
  const hist = workspace.histogram;
  hist.fill(0);
  let keys = workspace.keys;
  let keysAlt = workspace.keysAlt;
  let index: Int32Array = order;
  let indexAlt: Int32Array = workspace.indexAlt;
  for (let i = 0; i < n; i++) {
    F32[0] = weights[i];
    // Reversing the bit pattern's order turns an ascending sort into descending weights.
    const k = 0x7fffffff - (U32[0] & 0x7fffffff);
    keys[i] = k;
    index[i] = i;
    hist[k & 0xff]++;
    hist[RADIX + ((k >>> 8) & 0xff)]++;
    hist[2 * RADIX + ((k >>> 16) & 0xff)]++;
    hist[3 * RADIX + (k >>> 24)]++;
  }
  for (let pass = 0; pass < 4; pass++) {
    const base = pass * RADIX;
    const shift = pass * 8;
    // A digit shared by every key leaves the order unchanged: skip the pass.
    if (hist[base + ((keys[0] >>> shift) & 0xff)] === n) continue;
    let sum = 0;
    for (let d = 0; d < RADIX; d++) {
      const c = hist[base + d];
      hist[base + d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const k = keys[i];
      const pos = hist[base + ((k >>> shift) & 0xff)]++;
      keysAlt[pos] = k;
      indexAlt[pos] = index[i];
    }
    const tk = keys;
    keys = keysAlt;
    keysAlt = tk;
    const ti = index;
    index = indexAlt;
    indexAlt = ti;
  }
  if (index !== order) order.set(index.subarray(0, n));
}
