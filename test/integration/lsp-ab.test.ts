// "MoSLoRA: A/B Test" through the built language server: moslora/abTest runs `moslora ab` as a CLI
// child and answers with the report's files and sentences; the A/B's runs and ab.json lie where the
// run list finds them (<runs dir>/ab-<name>/<method>-seed<seed>/).
import assert from 'node:assert/strict';
import { cpSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, describe, it } from 'node:test';
import { abTestRequest } from '../../protocol/editor';
import { LspClient, SERVER } from '../helpers/lsp-client';

const ROOT = join(import.meta.dirname, '..', '..');

describe('the A/B test through the language server', { skip: existsSync(SERVER) ? false : `${SERVER} is not built; run npm run build` }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'moslora-lsp-ab-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('trains each method once per seed and answers with the report; refuses one method', { timeout: 240_000 }, async () => {
    cpSync(join(ROOT, 'examples', 'tiny-model'), join(dir, 'tiny-model'), { recursive: true });
    cpSync(join(ROOT, 'examples', 'tiny-task'), join(dir, 'tiny-task'), { recursive: true });
    const config = join(dir, 'tiny.moslora.yaml');
    writeFileSync(
      config,
      ['model: ./tiny-model', 'method: moslora', 'r: 4', 'alpha: 8', 'target_modules: [q_proj, v_proj]', 'data:', '  train: ./tiny-task/train.jsonl', '  eval: ./tiny-task/eval.jsonl', '  max_length: 32',
        'training:', '  max_steps: 4', '  batch_size: 4', '  log_interval: 2', '  eval_interval: 4', 'backend: wasm', ''].join('\n'),
    );
    const client = await LspClient.start(dir);
    try {
      const result = await client.connection.sendRequest(abTestRequest, { configUri: pathToFileURL(config).href, methods: ['lora', 'moslora'], seeds: 2 });
      const abDir = join(dir, 'runs', 'ab-tiny');
      assert.equal(result.abDir, abDir);
      assert.equal(result.reportFile, join(abDir, 'report.md'));
      assert.ok(existsSync(result.reportFile));
      assert.equal(result.trained, 4);
      assert.deepEqual(result.unfinished, []);
      assert.equal(result.sentences.length, 1, 'one comparison: moslora against the baseline');
      assert.deepEqual(readdirSync(abDir).filter((name) => name.includes('-seed')).sort(), ['lora-seed42', 'lora-seed43', 'moslora-seed42', 'moslora-seed43']);
      assert.ok(existsSync(join(abDir, 'ab.json')));
      await assert.rejects(client.connection.sendRequest(abTestRequest, { configUri: pathToFileURL(config).href, methods: ['lora'], seeds: 2 }), /at least two methods/);
    } finally {
      await client.stop();
    }
  });
});
