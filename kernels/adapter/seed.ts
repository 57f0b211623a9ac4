// Seeds handed to tfjs's random ops.

/**
 * tfjs takes a falsy seed as "no seed" (`seed || Math.random()`), so seed 0 would silently be
 * random. Every seed the kernels hand to tfjs goes through here: distinct integers stay distinct.
 */
export function tfSeed(seed: number): number {
  return seed >= 0 ? seed + 1 : seed;
}
