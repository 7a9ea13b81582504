/**
 * Index orderings for the hot loops, without comparator callbacks.
 *
 * A comparator sort over an index array costs a closure call per comparison. Instead each item
 * becomes one float64 key `rankOfWeight * stride + index`, where `stride` is a power of two above
 * the item count, and the keys are sorted natively by `Float64Array.prototype.sort`. For
 * non-negative float32 weights the rank is the weight's bit pattern (monotone in the value and
 * 31 bits wide), so keys stay below 2^53 and exact for up to 2^22 items.
 */

const F32 = new Float32Array(1);
const U32 = new Uint32Array(F32.buffer);

/** Reusable buffers for {@link orderDescending}; grows to the largest size seen. */
export class OrderWorkspace {
  keys = new Float64Array(0);
  ensure(n: number): Float64Array {
    if (this.keys.length < n) this.keys = new Float64Array(n);
    return this.keys;
  }
}

/**
 * Writes into `order[0..n)` the indices of `weights[0..n)` sorted by weight **descending**,
 * equal weights by **ascending index** (the deterministic tie-break documented for the reference
 * port). Weights are compared as float32 (they are rounded with `Math.fround`), which is what the
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
  if (n > 1 << 22) throw new RangeError(`orderDescending supports at most 2^22 items, got ${n}`);
  let stride = 1;
  while (stride < n) stride *= 2;
  const keys = workspace.ensure(n);
  for (let i = 0; i < n; i++) {
    F32[0] = weights[i];
    // 0x7fffffff - bits reverses the order so an ascending sort gives descending weights.
    keys[i] = (0x7fffffff - (U32[0] & 0x7fffffff)) * stride + i;
  }
  const view = keys.subarray(0, n);
  view.sort();
  for (let i = 0; i < n; i++) order[i] = view[i] % stride;
}
