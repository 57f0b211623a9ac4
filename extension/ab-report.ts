// An A/B's report (report.md, beside its runs) in VS Code's Markdown preview: from "MoSLoRA: A/B
// Test"'s notification, and from the panel's "Open A/B Report" (which names one of its runs).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as vscode from 'vscode';

export async function openReport(reportFile: string): Promise<void> {
  await vscode.commands.executeCommand('markdown.showPreview', vscode.Uri.file(reportFile));
}

/** Opens the report of the A/B whose folder is `abDir` (the report its ab.json names). */
export async function openAbReport(abDir: string): Promise<void> {
  const manifestFile = join(abDir, 'ab.json');
  const text = await readFile(manifestFile, 'utf8').catch(() => {
    throw new Error(`${abDir} has no ab.json: not an A/B folder`);
  });
  let report: unknown;
  try {
    report = (JSON.parse(text) as { report?: unknown }).report;
  } catch (error) {
    throw new Error(`${manifestFile}: not JSON (${(error as Error).message})`);
  }
  if (typeof report !== 'string' || !report) throw new Error(`${manifestFile}: no "report" file named`);
  const file = join(abDir, report);
  try {
    await readFile(file);
  } catch {
    throw new Error(`${file} is not written yet: the report comes when the A/B's runs end; run "MoSLoRA: A/B Test" on its config again to finish it`);
  }
  await openReport(file);
}
