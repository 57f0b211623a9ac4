// What a training run left in its folder, as the CLI tests read it back.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface TrainRecord {
  step: number;
  kind: string;
  loss: number;
  grad_norm: number;
}

/** The train records of a run folder's metrics.jsonl, in order. */
export async function trainRecords(runDir: string): Promise<TrainRecord[]> {
  const lines = (await readFile(join(runDir, 'metrics.jsonl'), 'utf8')).trim().split('\n');
  return lines.map((line) => JSON.parse(line) as TrainRecord).filter((r) => r.kind === 'train');
}
