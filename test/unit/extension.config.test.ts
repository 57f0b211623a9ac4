// The extension's settings (extension/config.ts), read through a stand-in for VS Code's
// configuration: the backend override and the runs folder.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { describe, it } from 'node:test';
import { Config } from '../../extension/config';

describe('Config', () => {
  const config = (values: Record<string, unknown>, root: string | undefined = '/ws') => new Config({ get: (key) => values[key] }, () => root);

  it('reads the backend, with auto (and anything unknown) leaving it to the config', () => {
    assert.equal(config({}).backend, 'auto');
    assert.equal(config({ backend: 'webgpu' }).backendOverride, 'webgpu');
    assert.equal(config({ backend: 'auto' }).backendOverride, undefined);
    assert.equal(config({ backend: 'cuda' }).backend, 'auto');
  });

  it("resolves the runs folder: empty means each config's own, relative starts at the workspace", () => {
    assert.equal(config({ runsDirectory: '' }).runsDirectory, undefined);
    assert.equal(config({ runsDirectory: '  ' }).runsDirectory, undefined);
    assert.equal(config({ runsDirectory: 'out/runs' }).runsDirectory, '/ws/out/runs');
    assert.equal(config({ runsDirectory: '/data/runs' }).runsDirectory, '/data/runs');
    assert.equal(new Config({ get: () => 'runs' }, () => undefined).runsDirectory, undefined, 'no workspace: nowhere to start');
    assert.equal(config({ runsDirectory: '~/runs' }).runsDirectory, resolve(process.env.HOME ?? '/', 'runs'));
  });
});
