// The extension↔webview protocol's validators: what the extension accepts from a webview (and
// what it must refuse), and what the page accepts from the extension.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { LIMITS, PROTOCOL_VERSION, isRunId, parseExtensionMessage, parseWebviewMessage } from '../../protocol/webview';

const refused = (value: unknown, why: RegExp): void => {
  const parsed = parseWebviewMessage(value);
  assert.equal(parsed.ok, false, `accepted ${JSON.stringify(value)?.slice(0, 120)}`);
  if (!parsed.ok) assert.match(parsed.error, why);
};

describe('parseWebviewMessage (the extension validates every message from the page)', () => {
  it('accepts each message the page sends', () => {
    const valid = [
      { type: 'ready', protocol: PROTOCOL_VERSION },
      { type: 'stop', runId: 'moslora-r8' },
      { type: 'resume', runId: 'moslora-r8' },
      { type: 'renameRun', runId: 'moslora-r8' },
      { type: 'deleteRun', runId: 'moslora-r8' },
      { type: 'cancelQueued', jobKey: '2:14' },
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
    refused({ type: 'resume' }, /missing "runId"/);
    refused({ type: 'deleteRun', runId: 'a', confirmed: true }, /unexpected "confirmed"/);
    refused({ type: 'renameRun', runId: 'a', name: 'b' }, /unexpected "name"/);
    for (const jobKey of ['1', '1:', ':2', '1:2:3', 'a:b', '1:2; rm', 3, '1:'.padEnd(LIMITS.jobKeyLength + 1, '2')]) {
      refused({ type: 'cancelQueued', jobKey }, /job key|expected a string|longer than/);
    }
  });

  it('refuses run ids and file names that could name a path', () => {
    for (const runId of ['', '.', '..', '../secrets', 'runs/a', 'a\\b', 'C:evil', 'a\u0000b', 'x'.repeat(201)]) {
      for (const type of ['stop', 'resume', 'renameRun', 'deleteRun']) refused({ type, runId }, /not a run id/);
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

  it('takes the run list with final loss, resumable and the config as dotted keys, exactly', () => {
    const listing = { runId: 'a', name: 'a', method: 'lora', finalLoss: 2.632, resumable: true, hyperparameters: { r: 8, 'training.learning_rate': 0.002, backend: 'auto', 'data.eval': null, use_rslora: false } };
    const parsed = parseExtensionMessage({ type: 'runs', runs: [listing] });
    assert.ok(parsed.ok && parsed.message.type === 'runs');
    assert.deepEqual({ ...parsed.message.runs[0]!.hyperparameters }, listing.hyperparameters);
    const bad = (patch: Record<string, unknown>, why: RegExp): void => {
      const result = parseExtensionMessage({ type: 'runs', runs: [{ ...listing, ...patch }] });
      assert.equal(result.ok, false, JSON.stringify(patch));
      if (!result.ok) assert.match(result.error, why);
    };
    bad({ finalLoss: null }, /runs\.runs\[0\]\.finalLoss: expected a finite number/);
    bad({ resumable: 'yes' }, /resumable: expected true or false/);
    bad({ hyperparameters: { r: [8] } }, /hyperparameters\.r: expected a string/);
    bad({ hyperparameters: { lr: Number.POSITIVE_INFINITY } }, /hyperparameters\.lr: expected a finite number/);
    bad({ hyperparameters: { x: 'y'.repeat(LIMITS.hyperparameterValueLength + 1) } }, /longer than/);
    bad({ hyperparameters: Object.fromEntries(Array.from({ length: LIMITS.hyperparameters + 1 }, (_, i) => [`k${i}`, i])) }, /more than 500 keys/);
    bad({ checkpoints: [1] }, /unexpected "checkpoints"/);
    // a key named __proto__ is a key, not the object's prototype
    const proto = parseExtensionMessage(JSON.parse('{"type":"runs","runs":[{"runId":"a","name":"a","hyperparameters":{"__proto__":"x"}}]}'));
    assert.ok(proto.ok && proto.message.type === 'runs');
    assert.deepEqual(Object.keys(proto.message.runs[0]!.hyperparameters!), ['__proto__']);
  });

  it('takes the queue, a removed run and a focus on a tab alone; refuses anything more', () => {
    const queue = { type: 'queue', jobs: [{ jobKey: '1:2', name: 'tiny', reason: 'waits for tiny-1: one job trains at a time' }] };
    assert.deepEqual(parseExtensionMessage(queue), { ok: true, message: queue });
    assert.equal(parseExtensionMessage({ type: 'queue', jobs: [{ jobKey: '1:2', name: 'tiny' }] }).ok, false);
    assert.equal(parseExtensionMessage({ type: 'queue', jobs: [{ ...queue.jobs[0], pid: 7 }] }).ok, false);
    assert.equal(parseExtensionMessage({ type: 'queue', jobs: Array.from({ length: LIMITS.queuedJobs + 1 }, () => queue.jobs[0]) }).ok, false);
    assert.deepEqual(parseExtensionMessage({ type: 'runRemoved', runId: 'a' }), { ok: true, message: { type: 'runRemoved', runId: 'a' } });
    assert.equal(parseExtensionMessage({ type: 'runRemoved', runId: '../a' }).ok, false);
    assert.deepEqual(parseExtensionMessage({ type: 'focus', tab: 'mixers' }), { ok: true, message: { type: 'focus', tab: 'mixers' } });
    assert.equal(parseExtensionMessage({ type: 'focus', tab: 'mixers', extra: 1 }).ok, false);
  });
});
