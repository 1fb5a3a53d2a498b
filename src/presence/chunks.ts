/**
 * Calls to other users' objects go out in parallel chunks: a chunk at a time,
 * so one user with a thousand friends never has a thousand calls in flight.
 */

/**
 * Runs `call` for every item, `size` at a time, and hands each item's settled
 * result to `settled` as soon as its chunk is done (in item order). A failed
 * call never stops the others; a `settled` that throws stops the chunks after
 * this one.
 */
export async function inChunks<T, R>(
  items: readonly T[],
  size: number,
  call: (item: T) => R,
  settled: (item: T, result: PromiseSettledResult<Awaited<R>>) => void = () => {},
): Promise<void> {
  for (let i = 0; i < items.length; i += size) {
    const chunk = items.slice(i, i + size);
    const results = await Promise.allSettled(chunk.map(call));
    results.forEach((result, j) => {
      settled(chunk[j]!, result);
    });
  }
}
