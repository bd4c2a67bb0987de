// Sharding: shard i of n takes a contiguous slice of the test groups, balanced by number of tests. Groups are
// never split (a serial describe stays in one shard), and over i = 1..n the shards partition the groups exactly.

/** The [from, to) range of test indices that shard `current` of `total` owns, out of `count` tests. */
export function shardRange(count: number, current: number, total: number): [number, number] {
  const size = Math.floor(count / total)
  const extra = count - size * total
  const from = size * (current - 1) + Math.min(extra, current - 1)
  const to = from + size + (current <= extra ? 1 : 0)
  return [from, to]
}

/** The groups of shard `current`/`total`: a group belongs to the shard holding the index of its first test. */
export function filterForShard<G extends { tests: unknown[] }>(
  groups: G[],
  shard: { current: number; total: number },
): G[] {
  const count = groups.reduce((n, g) => n + g.tests.length, 0)
  const [from, to] = shardRange(count, shard.current, shard.total)
  const out: G[] = []
  let index = 0
  for (const g of groups) {
    if (index >= from && index < to) out.push(g)
    index += g.tests.length
  }
  return out
}
