// The part of jstat (https://github.com/jstat/jstat; it ships no types) that the A/B statistics use.
declare module 'jstat' {
  export const jStat: {
    studentt: {
      /** The quantile: x with P(T ≤ x) = p, T Student-t with `dof` degrees of freedom. */
      inv(p: number, dof: number): number;
      /** P(T ≤ x). */
      cdf(x: number, dof: number): number;
    };
  };
}
