// bench/README.md is generated from bench/results/*.jsonl (bench/readme.ts): the latest run of
// each command with its figures, host and date; the checked-in page is what the records give.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseRecords, renderBenchReadme, type BenchRecord } from '../../bench/readme';

const ROOT = join(__dirname, '..', '..');

const run = (command: string, date: string, figures: Record<string, unknown>): BenchRecord => ({ bench: 'kernels', backend: 'wasm', ...figures, date, host: '2× Test CPU', command });

describe('bench/README.md', () => {
  it("shows each command's latest run, newest first, with its figures, setup, host and date", () => {
    const records = [
      run('npm run bench -- kernels', '2026-12-01T10:00:00.000Z', { rounds: 40, moslora_over_lora: 1.2 }),
      run('npm run bench -- kernels --rounds 100', '2026-12-02T10:00:00.000Z', { rounds: 100, moslora_over_lora: 1.0247, lora_median_ms: 50.8123 }),
      run('npm run bench -- kernels', '2026-12-03T10:00:00.000Z', { rounds: 40, moslora_over_lora: 1.0361, nested: { mask_ms: { ours: 6.25 } } }),
    ];
    const page = renderBenchReadme(new Map([['kernels', records]]), new Map([['kernels', 'forward+backward of one adapted layer']]));
    const rows = page.split('\n').filter((line) => line.startsWith('| `npm'));
    assert.deepEqual(rows, [
      '| `npm run bench -- kernels` | backend wasm | moslora_over_lora 1.036 · nested.mask_ms.ours 6.25 | 2× Test CPU | 2026-12-03 |',
      '| `npm run bench -- kernels --rounds 100` | backend wasm | moslora_over_lora 1.025 · lora_median_ms 50.81 | 2× Test CPU | 2026-12-02 |',
    ]);
    assert.match(page, /## kernels\n\nForward\+backward of one adapted layer\.\n\n3 runs recorded/);
    assert.doesNotMatch(page, /1\.2 /, 'an earlier run of a command is not shown');
  });

  it("shows losses and a nested object's figures, and takes a key holding `_s` inside it (`_seed`) for no unit", () => {
    const record = run('npm run bench -- scale', '2026-12-03T10:00:00.000Z', {
      loss_gap: { steps: 20, cases: [{ precision: 'int8', final_loss: 2.5, wall_s: 10 }], float32_next_seed: { final_loss: 2.6, seed: 43 } },
    });
    const page = renderBenchReadme(new Map([['scale', [record]]]), new Map());
    const row = page.split('\n').find((line) => line.startsWith('| `npm'))!;
    assert.match(row, /\| loss_gap\.cases\[0\]\.final_loss 2\.5 · loss_gap\.cases\[0\]\.wall_s 10 · loss_gap\.float32_next_seed\.final_loss 2\.6 \|/);
  });

  it('names the file and line of a record it cannot read', () => {
    assert.throws(() => parseRecords('bench/results/x.jsonl', '{"date":"d","host":"h","command":"c"}\n{oops\n'), /bench\/results\/x\.jsonl:2: not JSON/);
    assert.throws(() => parseRecords('bench/results/x.jsonl', '{"date":"d","host":"h"}\n'), /x\.jsonl:1: a record needs date, host and command/);
  });

  it('is what bench/results/*.jsonl give (npm run bench -- readme regenerates it)', () => {
    const bench = join(ROOT, 'dist', 'bench.js');
    assert.ok(existsSync(bench), 'dist/bench.js is missing: npm run build first');
    const check = spawnSync(process.execPath, [bench, 'readme', '--check'], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(check.status, 0, check.stderr);
  });
});
