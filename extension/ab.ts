// "MoSLoRA: A/B Test": a config trained once per method and seed by `moslora ab` in the server,
// under a cancellable progress notification; at the end the report's verdict with Open Report
// (report.md in the Markdown preview) and Compare Runs. Cancelling stops the runs at a
// checkpoint: the same A/B again continues them.
import { basename } from 'node:path';
import * as vscode from 'vscode';
import { abProgressNotification, abTestRequest, type AbTestResult } from '../protocol/editor';
import { commandIds } from '../protocol/commands';
import { abTestParams, DEFAULT_SEEDS, MAX_SEEDS, MIN_SEEDS, methodChoices, progressMessage, seedsError } from './ab-choices';
import { openReport } from './ab-report';
import type { Ctx } from './ctx';
import { TrainingPanel } from './panel';

const TITLE = 'MoSLoRA: A/B Test';
let nextProgressId = 1;

export function abTest(ctx: Ctx, configUri: (arg: unknown, title: string) => Promise<vscode.Uri | undefined>): (arg?: unknown) => Promise<void> {
  return async (arg) => {
    const uri = await configUri(arg, TITLE);
    if (!uri) return;
    if (uri.scheme !== 'file') throw new Error(`${uri.toString(true)}: save the config to a file first; its paths are relative to it`);
    const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
    if (document?.isDirty && !(await document.save())) return;
    const picked = await vscode.window.showQuickPick(
      methodChoices().map(({ method, picked }) => ({ label: method, picked })),
      { title: TITLE, placeHolder: 'methods to compare: the first in this list is the baseline the others are compared with', canPickMany: true },
    );
    if (!picked) return;
    if (picked.length < 2) {
      void vscode.window.showWarningMessage('MoSLoRA: an A/B test compares two or more methods: pick at least two.');
      return;
    }
    const seeds = await vscode.window.showInputBox({
      title: TITLE,
      prompt: `Seeds per method (${MIN_SEEDS}–${MAX_SEEDS}): each seed trains every method once, with its own init, dropout and data order`,
      value: String(DEFAULT_SEEDS),
      validateInput: seedsError,
    });
    if (seeds === undefined) return;
    const { client } = ctx.ready();
    const params = abTestParams(uri.toString(), picked.map((p) => p.label), seeds, ctx.config.runsDirectory, `ab-${nextProgressId++}`);
    const what = `${params.methods.join(' vs ')} on ${basename(uri.fsPath)}, ${params.seeds} seeds`;
    ctx.log.info(`A/B test: ${what}`);
    const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `${TITLE}: ${what}`, cancellable: true }, async (progress, token) => {
      let shown = 0;
      const listening = client.onNotification(abProgressNotification, ({ progressId, progress: p }) => {
        if (progressId !== params.progressId) return;
        const running = p.current?.totalSteps && p.done < p.total ? Math.min(1, p.current.step / p.current.totalSteps) : 0;
        const fraction = p.total ? (p.done + running) / p.total : 0;
        const increment = Math.max(0, fraction * 100 - shown);
        shown += increment;
        progress.report({ message: progressMessage(p), increment });
      });
      try {
        return await client.sendRequest(abTestRequest, params, token);
      } catch (error) {
        if (token.isCancellationRequested) return undefined;
        throw error;
      } finally {
        listening.dispose();
      }
    });
    TrainingPanel.refreshRuns();
    if (!result) {
      ctx.log.info(`A/B test ${what}: cancelled`);
      void vscode.window.showInformationMessage(`MoSLoRA: A/B test stopped. Every run kept its checkpoint: run "${TITLE}" again with the same methods and seeds to continue.`);
      return;
    }
    await announce(ctx, result);
  };
}

async function announce(ctx: Ctx, result: AbTestResult): Promise<void> {
  ctx.log.info(`A/B test ${result.abDir}: trained ${result.trained}, report ${result.reportFile}; ${result.sentences.join(' ')}`);
  const unfinished = result.unfinished.map((run) => `${run.method} seed ${run.seed} ${run.state}${run.message ? ` (${run.message})` : ''}`);
  const text = `MoSLoRA: ${result.sentences.join(' ')}${unfinished.length ? ` Not finished: ${unfinished.join('; ')}.` : ''}`;
  const show = unfinished.length ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  const choice = await show(text, 'Open Report', 'Compare Runs');
  if (choice === 'Open Report') await openReport(result.reportFile);
  else if (choice === 'Compare Runs') await vscode.commands.executeCommand(commandIds.compareRuns);
}
