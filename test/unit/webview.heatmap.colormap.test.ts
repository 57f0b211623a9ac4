// The mixer heatmaps' colours and labels (webview/heatmap/colormap.ts): the diverging colour map
// and the split of a module name into layer and module.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { diverging, splitModule, symmetricLimit } from '../../webview/heatmap/colormap';

describe('diverging colour map', () => {
  const blue = { r: 0, g: 0, b: 255 };
  const bg = { r: 30, g: 30, b: 30 };
  const red = { r: 255, g: 0, b: 0 };
  it('0 is neutral, ±limit the end colours, symmetric', () => {
    assert.deepEqual(diverging(0, 2, blue, bg, red), bg);
    assert.deepEqual(diverging(2, 2, blue, bg, red), red);
    assert.deepEqual(diverging(-2, 2, blue, bg, red), blue);
    assert.deepEqual(diverging(5, 2, blue, bg, red), red, 'clamped');
    assert.deepEqual(diverging(1, 2, blue, bg, red), { r: 143, g: 15, b: 15 });
    assert.equal(symmetricLimit([[0.5, -1.5], [null, 1]]), 1.5);
    assert.equal(symmetricLimit([[0, 0]]), 1);
  });
  it('splits checkpoint module names into layer and module', () => {
    assert.deepEqual(splitModule('model.layers.12.self_attn.q_proj'), { layer: '12', kind: 'self_attn.q_proj' });
    assert.deepEqual(splitModule('transformer.h.3.attn.c_attn'), { layer: '3', kind: 'attn.c_attn' });
    assert.deepEqual(splitModule('lm_head'), { layer: '', kind: 'lm_head' });
  });
});
