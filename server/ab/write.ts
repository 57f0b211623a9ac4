// Writes an A/B's report beside its runs: report.md and figures/*.svg, all recomputed from the
// runs on disk, so `moslora ab <folder> --report-only` rebuilds the same files.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { curvesFigure, pairedFigure } from './figures';
import { FIGURES_DIR, MANIFEST_FILE, parseManifest, REPORT_FILE } from './layout';
import { renderMarkdown, type FigureLink } from './markdown';
import { computeReport, METRIC_LABELS, type AbReport } from './report';
import { readRunResults } from './results';
import type { AbManifest } from '../../protocol/records';

export interface WrittenReport {
  manifest: AbManifest;
  report: AbReport;
  /** Absolute. */
  reportFile: string;
  /** Absolute. */
  figures: string[];
}

export async function readManifest(abDir: string): Promise<AbManifest> {
  const file = join(abDir, MANIFEST_FILE);
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    throw new Error(`${file}: cannot read the A/B's manifest (${error.code ?? String(error)}); is ${abDir} the folder \`moslora ab\` made (ab-<name>)?`);
  });
  return parseManifest(text, file);
}

export async function writeReport(abDir: string, rebuild: string): Promise<WrittenReport> {
  const manifest = await readManifest(abDir);
  const report = computeReport(manifest, await readRunResults(abDir, manifest));
  const candidates: { file: string; caption: string; svg: string | null }[] = [
    { file: 'train-loss.svg', caption: 'Train loss against step: mean over seeds, band from the lowest to the highest seed', svg: curvesFigure(report, 'train') },
    { file: 'eval-loss.svg', caption: 'Eval loss against step: mean over seeds, band from the lowest to the highest seed', svg: curvesFigure(report, 'eval') },
    { file: `paired-${report.primary === 'evalLoss' ? 'eval' : 'train'}-loss.svg`, caption: `Paired differences of ${METRIC_LABELS[report.primary]} per seed, with the mean and its t-interval`, svg: pairedFigure(report, report.primary) },
  ];
  const figuresDir = join(abDir, FIGURES_DIR);
  // figures of an earlier report that this one has no data for must not be shown as if current
  await rm(figuresDir, { recursive: true, force: true });
  const links: FigureLink[] = [];
  for (const { file, caption, svg } of candidates) {
    if (svg === null) continue;
    await mkdir(figuresDir, { recursive: true });
    await writeFile(join(figuresDir, file), svg);
    links.push({ file: `${FIGURES_DIR}/${file}`, caption });
  }
  const reportFile = join(abDir, REPORT_FILE);
  await writeFile(reportFile, renderMarkdown(report, links, rebuild));
  const updated: AbManifest = { ...manifest, report: REPORT_FILE, figures: links.map((link) => link.file) };
  await writeFile(join(abDir, MANIFEST_FILE), `${JSON.stringify(updated, null, 2)}\n`);
  return { manifest: updated, report, reportFile, figures: links.map((link) => join(abDir, link.file)) };
}
