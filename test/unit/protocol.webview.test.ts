// The extension↔webview protocol's validators: what the extension accepts from a webview (and
// what it must refuse), and what the page accepts from the extension.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LIMITS, isRunId, parseExtensionMessage, parseWebviewMessage } from '../../protocol/webview';

const refused = (value: unknown, why: RegExp): void => {
  const parsed = parseWebviewMessage(value);
  assert.equal(parsed.ok, false, `accepted ${JSON.stringify(value)?.slice(0, 120)}`);
  if (!parsed.ok) assert.match(parsed.error, why);
};

describe('parseWebviewMessage (the extension validates every message from the page)', () => {
  it('accepts each message the page sends', () => {
    const valid = [
      { type: 'ready', protocol: 1 },
      { type: 'stop', runId: 'moslora-r8' },
      { type: 'requestRun', runId: 'run 2025-01-15 09.30' },
      { type: 'exportCsv', fileName: 'moslora-r8-metrics.csv', csv: 'run,step\r\nx,1\r\n' },
      { type: 'exportPng', fileName: 'compare.png', dataUrl: 'data:image/png;base64,iVBORw0KGgo=' },
      { type: 'setSmoothing', weight: 0 },
      { type: 'setSmoothing', weight: 0.999 },
      { type: 'error', message: 'panel: something broke' },
    ];
    for (const message of valid) assert.deepEqual(parseWebviewMessage(message), { ok: true, message });
  });

  it('refuses what is not a message', () => {
    for (const value of [null, undefined, 42, 'stop', [], [{ type: 'stop', runId: 'a' }]]) refused(value, /expected an object/);
    refused({}, /unknown type/);
    refused({ type: 'rm -rf', runId: 'a' }, /unknown type/);
    refused({ type: '__proto__' }, /unknown type/);
  });

  it('refuses missing, extra and mistyped fields', () => {
    refused({ type: 'stop' }, /missing "runId"/);
    refused({ type: 'stop', runId: 'a', command: 'x' }, /unexpected "command"/);
    refused({ type: 'stop', runId: 7 }, /not a run id/);
    refused({ type: 'ready', protocol: '1' }, /finite number/);
    refused({ type: 'ready', protocol: 1.5 }, /whole number/);
    refused({ type: 'setSmoothing', weight: Number.NaN }, /finite number/);
    refused({ type: 'setSmoothing', weight: 1 }, /expected 0 to 0.999/);
    refused({ type: 'setSmoothing', weight: -0.1 }, /expected 0 to 0.999/);
    refused({ type: 'error', message: 'x'.repeat(LIMITS.errorLength + 1) }, /longer than/);
  });

  it('refuses run ids and file names that could name a path', () => {
    for (const runId of ['', '.', '..', '../secrets', 'runs/a', 'a\\b', 'C:evil', 'a\u0000b', 'x'.repeat(201)]) {
      refused({ type: 'stop', runId }, /not a run id/);
      assert.equal(isRunId(runId), false, runId);
    }
    refused({ type: 'exportCsv', fileName: '../../.bashrc.csv', csv: '' }, /plain file name/);
    refused({ type: 'exportCsv', fileName: 'metrics.exe', csv: '' }, /ending in \.csv/);
    refused({ type: 'exportPng', fileName: 'x.png', dataUrl: 'data:text/html;base64,PHNjcmlwdD4=' }, /data:image\/png;base64/);
    refused({ type: 'exportPng', fileName: 'x.png', dataUrl: 'data:image/png;base64,<svg onload=x>' }, /data:image\/png;base64/);
  });
});

describe('parseExtensionMessage (the page checks what the extension sends)', () => {
  it('accepts every message of the recorded run', () => {
    const fixture = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'fixtures', 'webview', 'run.json'), 'utf8')) as { messages: unknown[] };
    for (const message of fixture.messages) {
      const parsed = parseExtensionMessage(message);
      assert.ok(parsed.ok, parsed.ok ? '' : parsed.error);
    }
  });

  it('takes a diverged metric or mixer value as null (what JSON writes for NaN)', () => {
    const records = JSON.parse(JSON.stringify([{ step: 3, kind: 'train', loss: Number.NaN, lr: 1e-4 }]));
    assert.equal(records[0].loss, null);
    assert.ok(parseExtensionMessage({ type: 'metrics', runId: 'a', records }).ok);
    const snapshot = { step: 3, module: 'm', r: 1, values: [null], distanceFromIdentity: null, singularValues: [null] };
    assert.ok(parseExtensionMessage({ type: 'mixers', runId: 'a', snapshots: [snapshot] }).ok);
  });

  it('refuses a batch with a bad record, naming it', () => {
    const parsed = parseExtensionMessage({ type: 'metrics', runId: 'a', records: [{ step: 1, kind: 'train' }, { step: -1, kind: 'train' }] });
    assert.deepEqual(parsed, { ok: false, error: 'metrics.records[1].step: expected a whole number ≥ 0, got -1' });
    const mixer = parseExtensionMessage({ type: 'mixers', runId: 'a', snapshots: [{ step: 0, module: 'm', r: 2, values: [1, 0, 0], distanceFromIdentity: 0, singularValues: [] }] });
    assert.deepEqual(mixer, { ok: false, error: 'mixers.snapshots[0].values: expected 2×2 = 4 values, got 3' });
    assert.equal(parseExtensionMessage({ type: 'runState', state: { runId: 'a' } }).ok, false);
    assert.equal(parseExtensionMessage({ type: 'theme', kind: 'sepia' }).ok, false);
  });
});
