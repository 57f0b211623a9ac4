// The server's settings as the editor sends them (protocol/editor.ts serverSettingsOf): what it
// takes as a runs folder, and anything else as unset.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { serverSettingsOf } from '../../protocol/editor';

describe('server settings from the editor', () => {
  it('take a non-empty runsDirectory string, and anything else as unset', () => {
    assert.deepEqual(serverSettingsOf({ runsDirectory: '/runs' }), { runsDirectory: '/runs' });
    for (const value of [null, undefined, {}, { runsDirectory: '' }, { runsDirectory: 3 }, 'x']) assert.deepEqual(serverSettingsOf(value), { runsDirectory: null });
  });
});
