// Completion latency of the built language server, idle and while a training job runs in its
// own process on the tiny model: the job must not make the editor feel slow.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CompletionRequest } from 'vscode-languageserver-protocol/node';
import { cancelTrainingRequest, jobUpdateNotification, startTrainingRequest } from '../protocol/editor';
import { LspClient } from '../test/helpers/lsp-client';

export interface ServerBenchResult {
  bench: 'server';
  requests: number;
  idle_p50_ms: number;
  idle_p95_ms: number;
  training_p50_ms: number;
  training_p95_ms: number;
  training_p95_over_idle_p95: number;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export async function benchServer(options: { requests: number }): Promise<ServerBenchResult> {
  const dir = await mkdtemp(join(tmpdir(), 'moslora-bench-server-'));
  const examples = join(__dirname, '..', 'examples');
  const client = await LspClient.start(dir, { server: join(__dirname, 'server.js') });
  try {
    const config = join(dir, 'bench.moslora.yaml');
    const text = [
      `model: ${join(examples, 'tiny-model')}`, 'method: moslora', 'target_modules: [q_proj, v_proj]',
      'data:', `  train: ${join(examples, 'tiny-task', 'train.jsonl')}`, 'training:', '  max_steps: 100000', '  batch_size: 16',
      'output:', `  runs_dir: ${join(dir, 'runs')}`, 'backend: wasm', '',
    ].join('\n');
    await writeFile(config, text);
    const uri = pathToFileURL(config).href;
    await client.open(uri, text);
    // Completion of the keys under `training:`, the server's everyday work.
    const position = { line: 7, character: 2 };
    const measure = async () => {
      const times: number[] = [];
      for (let i = 0; i < options.requests; i++) {
        const started = performance.now();
        await client.connection.sendRequest(CompletionRequest.type, { textDocument: { uri }, position });
        times.push(performance.now() - started);
      }
      return times;
    };
    await measure();
    const idle = await measure();
    let training = false;
    const trainingStarted = new Promise<void>((resolve) =>
      client.connection.onNotification(jobUpdateNotification, (u) => {
        if (u.job.state === 'training' && u.job.step >= 1 && !training) {
          training = true;
          resolve();
        }
      }),
    );
    const job = await client.connection.sendRequest(startTrainingRequest, { configUri: uri });
    await trainingStarted;
    const busy = await measure();
    await client.connection.sendRequest(cancelTrainingRequest, { jobId: job.id });
    const round = (x: number) => Number(x.toFixed(2));
    return {
      bench: 'server', requests: options.requests,
      idle_p50_ms: round(percentile(idle, 50)), idle_p95_ms: round(percentile(idle, 95)),
      training_p50_ms: round(percentile(busy, 50)), training_p95_ms: round(percentile(busy, 95)),
      training_p95_over_idle_p95: round(percentile(busy, 95) / percentile(idle, 95)),
    };
  } finally {
    await client.stop();
    await rm(dir, { recursive: true, force: true });
  }
}
