// `moslora ab` end to end with the built CLI on the tiny shipped model: a Ctrl-C in the terminal
// (SIGINT to the whole process group, trainers included) stops the A/B with checkpoints, and the
// same command again finishes it without retraining the runs that had finished.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

const ROOT = join(import.meta.dirname, '..', '..');
const CLI = join(ROOT, 'dist', 'cli.js');
const EXAMPLES = join(ROOT, 'examples');

let dir: string;
let config: string;

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `moslora ab` in its own process group; `interrupt` says, from its stderr so far, when to press Ctrl-C. */
function ab(args: string[], interrupt?: (stderr: string) => boolean): Promise<Finished> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, 'ab', ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let pressed = false;
    const guard = setTimeout(() => {
      process.kill(-child.pid!, 'SIGKILL');
      reject(new Error(`moslora ab did not finish within 240 s:\n${stderr}`));
    }, 240_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
      if (interrupt && !pressed && interrupt(stderr)) {
        pressed = true;
        // a terminal's Ctrl-C: every process of the foreground group gets SIGINT
        process.kill(-child.pid!, 'SIGINT');
      }
    });
    child.on('close', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

async function snapshot(runDir: string): Promise<Record<string, { text: string; mtime: number }>> {
  const out: Record<string, { text: string; mtime: number }> = {};
  for (const file of ['config.yaml', 'metrics.jsonl', 'summary.json', 'adapter/adapter_model.safetensors']) {
    const path = join(runDir, file);
    out[file] = { text: (await readFile(path)).toString('base64'), mtime: (await stat(path)).mtimeMs };
  }
  return out;
}

describe('moslora ab with the built CLI', { skip: existsSync(CLI) && existsSync(join(ROOT, 'dist', 'trainer.js')) ? false : 'run `npm run build` first' }, () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-ab-'));
    const evalFile = join(dir, 'eval-mc.jsonl');
    await writeFile(evalFile, (await readFile(join(EXAMPLES, 'tiny-task', 'eval-mc.jsonl'), 'utf8')).split('\n').slice(0, 8).join('\n'));
    config = join(dir, 'tiny.moslora.yaml');
    await writeFile(config, [
      `model: ${join(EXAMPLES, 'tiny-model')}`, 'method: moslora', 'r: 4', 'alpha: 8', 'target_modules: [q_proj, v_proj]',
      'data:', `  train: ${join(EXAMPLES, 'tiny-task', 'train.jsonl')}`, `  eval: ${evalFile}`, '  max_length: 32',
      'training:', '  max_steps: 12', '  batch_size: 4', '  gradient_accumulation: 1', '  warmup_steps: 1', '  seed: 7',
      '  log_interval: 2', '  eval_interval: 12', '  checkpoint_interval: 4', '  mixer_interval: 12',
      'output:', `  runs_dir: ${join(dir, 'runs')}`, 'backend: wasm', '',
    ].join('\n'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('Ctrl-C stops it with checkpoints; the same command again trains only what is missing, and --report-only rebuilds the same report', async () => {
    const abDir = join(dir, 'runs', 'ab-tiny');
    // stop as the second run (lora, seed 8) starts its steps, the first one finished
    const stopped = await ab([config, '--seeds', '2'], (stderr) => /lora seed 7: done after 12 steps/.test(stderr) && /lora seed 8: training from step 0\/12/.test(stderr));
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /stopping: each running run saves a checkpoint first/);
    assert.match(stopped.stderr, /stopped; the report covers the runs that finished\. Run the same command again to continue\./);
    const first = JSON.parse(await readFile(join(abDir, 'lora-seed7', 'summary.json'), 'utf8')) as { state: string };
    const second = JSON.parse(await readFile(join(abDir, 'lora-seed8', 'summary.json'), 'utf8')) as { state: string; steps: number };
    assert.equal(first.state, 'done');
    assert.equal(second.state, 'cancelled');
    assert.ok((await readdir(join(abDir, 'lora-seed8', 'checkpoints'))).some((name) => /^step-\d+$/.test(name)), 'the stopped run saved a checkpoint');
    // the run trained the config but for method, seed and workers
    const ran = await readFile(join(abDir, 'lora-seed8', 'config.yaml'), 'utf8');
    assert.match(ran, /^method: lora$/m);
    assert.match(ran, /^ {2}seed: 8$/m);
    assert.match(ran, /^ {2}workers: 1$/m);
    assert.match(ran, /^ {2}max_steps: 12$/m);
    const finished = await snapshot(join(abDir, 'lora-seed7'));

    const resumed = await ab([config, '--seeds', '2', '--json']);
    assert.equal(resumed.code, 0, resumed.stderr);
    assert.match(resumed.stderr, /lora seed 7: finished earlier: kept/);
    assert.match(resumed.stderr, new RegExp(`lora seed 8: resumes from its checkpoint at step ${second.steps}`));
    assert.match(resumed.stderr, new RegExp(`lora seed 8: training from step ${second.steps}/12`));
    const result = JSON.parse(resumed.stdout.trim().split('\n').at(-1)!) as { abDir: string; trained: number; reportFile: string; sentences: string[]; report: { perMethod: { done: number; trainableParameters: number }[] } };
    assert.equal(result.abDir, abDir);
    assert.equal(result.trained, 3, 'lora seed 8 (resumed) and both MoSLoRA runs');
    assert.deepEqual(result.report.perMethod.map((m) => m.done), [2, 2]);
    const summary = JSON.parse(await readFile(join(abDir, 'moslora-seed8', 'summary.json'), 'utf8')) as { method: string; trainableParameters: number };
    assert.equal(summary.method, 'moslora');
    // r 4 on q_proj, v_proj of 4 layers: the mixers' 16 parameters each on top of LoRA's
    assert.deepEqual(result.report.perMethod.map((m) => m.trainableParameters), [summary.trainableParameters - 8 * 16, summary.trainableParameters]);
    assert.deepEqual(await snapshot(join(abDir, 'lora-seed7')), finished, 'the finished run is untouched');
    const steps = (await readFile(join(abDir, 'lora-seed8', 'metrics.jsonl'), 'utf8')).trim().split('\n').map((line) => JSON.parse(line) as { step: number; kind: string });
    assert.deepEqual(steps.filter((r) => r.kind === 'train').map((r) => r.step), [2, 4, 6, 8, 10, 12], 'each step logged once across the stop');

    const markdown = await readFile(result.reportFile, 'utf8');
    assert.ok(markdown.includes(result.sentences[0]!));
    const rebuilt = await ab([abDir, '--report-only']);
    assert.equal(rebuilt.code, 0, rebuilt.stderr);
    assert.equal(rebuilt.stdout, `${result.sentences[0]}\nreport: ${result.reportFile}\n`);
    assert.equal(await readFile(result.reportFile, 'utf8'), markdown, 'rebuilt from the runs: the same report');
  });

  it('says what is wrong with its arguments, and trains nothing', async () => {
    const one = await ab([config, '--methods', 'lora']);
    assert.equal(one.code, 1);
    assert.match(one.stderr, /give two or more methods to compare, e\.g\. lora,moslora \(got "lora"\)/);
    const unknown = await ab([config, '--methods', 'lora,dora']);
    assert.match(unknown.stderr, /unknown method "dora"; allowed: lora, moslora, moslora-fixed, linchain/);
    const folder = await ab([dir, '--report-only']);
    assert.equal(folder.code, 1);
    assert.match(folder.stderr, /has no ab\.json: not an A\/B folder/);
  });
});
