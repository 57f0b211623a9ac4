// What the benchmarks share in how they measure: the turns two or more sides take within one run,
// and which kernels count as dispatches.

/** The sides in this round's order: each round starts one further on, so that none always runs first (on a colder or warmer cache). */
export function inTurn<T>(sides: readonly T[], round: number): T[] {
  return sides.map((_, j) => sides[(round + j) % sides.length]!);
}

/** The kernels that compute (all but Reshape and Identity, which relabel or share a tensor): each a dispatch on a GPU. */
export function computingKernels(names: readonly string[]): string[] {
  return names.filter((n) => n !== 'Reshape' && n !== 'Identity');
}
