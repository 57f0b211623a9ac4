// "Did you mean …?" for tensor names: the candidates nearest by edit distance.

function editDistance(a: string, b: string): number {
  // One row of the Levenshtein table at a time: row[j] = distance(a[0..i), b[0..j)).
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      next.push(Math.min(row[j]! + 1, next[j - 1]! + 1, substitution));
    }
    row = next;
  }
  return row[b.length]!;
}

/** The `count` candidates closest to `name`, nearest first (ties in alphabetical order). */
export function nearestNames(name: string, candidates: Iterable<string>, count = 3): string[] {
  return [...candidates]
    .map((candidate) => ({ candidate, distance: editDistance(name, candidate) }))
    .sort((x, y) => x.distance - y.distance || (x.candidate < y.candidate ? -1 : 1))
    .slice(0, count)
    .map(({ candidate }) => candidate);
}

/** `no tensor "x"` followed by the nearest names, for an unknown-tensor error. */
export function unknownTensorProblem(name: string, candidates: Iterable<string>): string {
  const nearest = nearestNames(name, candidates);
  const hint = nearest.length > 0 ? `; nearest names: ${nearest.map((n) => JSON.stringify(n)).join(', ')}` : '; it holds no tensors';
  return `no tensor ${JSON.stringify(name)}${hint}`;
}
