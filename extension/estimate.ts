// "Estimate" in words: the server's report (server/tasks/estimate.ts) as the modal shows it.
import { basename } from 'node:path';
import type { EstimateReport } from '../protocol/editor';
import { formatCount, formatNumber } from '../protocol/format';

export function describeEstimate(e: EstimateReport): string {
  const share = (n: number) => `${((100 * n) / e.baseParameters).toPrecision(3)} % of the base`;
  const mixers = e.moslora - e.lora;
  return [
    `Model: ${basename(e.model)} (${e.architecture}), ${formatCount(e.baseParameters)} parameters.`,
    `Adapters: ${e.method}, r = ${e.r}, on ${e.modules} module${e.modules === 1 ? '' : 's'}.`,
    '',
    `LoRA trains ${formatCount(e.lora)} parameters (${share(e.lora)}).`,
    `MoSLoRA trains ${formatCount(e.moslora)} (${share(e.moslora)}): its mixers add ${formatCount(mixers)}, +${formatNumber((100 * mixers) / e.lora)} % over LoRA.`,
    `This config trains ${formatCount(e.trainable)}${e.magnitudes === undefined ? '' : `, DoRA's magnitudes (d_out per module) included: ${formatCount(e.magnitudes)}`}.`,
    '',
    `The run: ${formatCount(e.trainExamples)} training examples, batch ${e.batchSize} × ${e.gradientAccumulation} accumulation: ${formatCount(e.totalSteps)} optimizer steps.`,
    ...(e.note ? [`(${e.note})`] : []),
  ].join('\n');
}
