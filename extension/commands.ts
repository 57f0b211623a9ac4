// The palette's commands, each a small factory over the context (as rust-analyzer's commands.ts).
// Training, merging, export and trying an adapter read models and data the workspace names and
// write files: in Restricted Mode they are refused with a message; editing features still work.
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join } from 'node:path';
import * as vscode from 'vscode';
import type { LanguageClient } from 'vscode-languageclient/node';
import { cancelTrainingRequest, environmentRequest, estimateRequest, exportAdapterRequest, generateRequest, mergeAdapterRequest, startTrainingRequest, type RunFolder } from '../protocol/editor';
import { describeQuantisationCost, type QuantisationCost } from '../protocol/cli';
import { formatCount, formatNumber } from '../protocol/format';
import { SECTION, SETTINGS } from './config';
import type { Ctx } from './ctx';
import { isFinal, type TrackedJob } from './jobs';
import { TrainingPanel } from './panel';
import { offerFolder } from './results';
import { checkpointSteps, readRunConfig } from './runs';
import { datasetAt, evalFor, formatOf, modelAt, namedForTraining, relativeToConfig, scanWorkspace, targetModulesFor, trainCandidates, type FoundDataset, type FoundModel } from './scan';
import { describeEstimate } from './estimate';
import { configTemplate, examplePaths, PLACEHOLDER_PATHS, type TemplatePaths } from './template';
import { BACKEND_PREFERENCES, type BackendPreference } from '../protocol/backends';
import { commandIds, type CommandName } from '../protocol/commands';
import { abTest } from './ab';

type Cmd = (...args: unknown[]) => unknown;

interface CommandSpec {
  /** For error messages: "MoSLoRA: <what>: <reason>". */
  what: string;
  make: (ctx: Ctx) => Cmd;
}

export const COMMANDS: Record<CommandName, CommandSpec> = {
  newConfig: { what: 'New Adapter Config', make: newConfig },
  startTraining: { what: 'Start Training', make: startTraining },
  stopTraining: { what: 'Stop Training', make: stopTraining },
  resumeTraining: { what: 'Resume Training', make: resumeTraining },
  openPanel: { what: 'Open Training Panel', make: openPanel },
  compareRuns: { what: 'Compare Runs', make: (ctx) => () => void TrainingPanel.createOrShow(ctx, { tab: 'compare' }) },
  showMixers: { what: 'Show Mixer Heatmaps', make: (ctx) => () => void TrainingPanel.createOrShow(ctx, { tab: 'mixers', choose: 'mixers' }) },
  mergeAdapter: { what: 'Merge Adapter', make: mergeAdapter },
  exportAdapter: { what: 'Export PEFT Adapter', make: exportAdapter },
  tryAdapter: { what: 'Try Adapter', make: tryAdapter },
  selectBackend: { what: 'Select Backend', make: selectBackend },
  showServerLog: { what: 'Show Server Log', make: (ctx) => () => ctx.serverLog.show() },
  restartServer: { what: 'Restart Server', make: restartServer },
  estimate: { what: 'Estimate', make: estimate },
  abTest: { what: 'A/B Test', make: (ctx) => (arg) => (trusted('A/B testing') ? abTest(ctx, (a, title) => configUri(ctx, a, title))(arg) : undefined) },
  showEnvironment: { what: 'Show Compute Environment', make: showEnvironment },
};

export function registerCommands(ctx: Ctx): vscode.Disposable[] {
  return (Object.keys(COMMANDS) as CommandName[]).map((name) => {
    const { what, make } = COMMANDS[name];
    const command = make(ctx);
    return vscode.commands.registerCommand(commandIds[name], async (...args: unknown[]) => {
      try {
        return await command(...args);
      } catch (error) {
        if (!(error instanceof vscode.CancellationError)) ctx.showError(what, error);
        return undefined;
      }
    });
  });
}

/** Restricted Mode: say why, offer the way out, and refuse. */
function trusted(what: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window
    .showWarningMessage(
      `MoSLoRA: ${what} is off in Restricted Mode: it reads the models and data this workspace's configs name and writes files. Trust the workspace to use it; editing configs works either way.`,
      'Manage Workspace Trust',
    )
    .then((choice) => choice && vscode.commands.executeCommand('workbench.trust.manage'));
  return false;
}

// ---------------------------------------------------------------------------------------------
// Configs and training

function newConfig(ctx: Ctx): Cmd {
  return async () => {
    const folder = vscode.window.activeTextEditor
      ? (vscode.workspace.getWorkspaceFolder(vscode.window.activeTextEditor.document.uri) ?? vscode.workspace.workspaceFolders?.[0])
      : vscode.workspace.workspaceFolders?.[0];
    if (!folder || folder.uri.scheme !== 'file') {
      // no folder: an untitled config; its paths mean something once it is saved beside the model
      const document = await vscode.workspace.openTextDocument({ language: 'moslora-config', content: configTemplate(PLACEHOLDER_PATHS, 'placeholders') });
      await vscode.window.showTextDocument(document);
      return;
    }
    const root = folder.uri.fsPath;
    let suggestion = 'adapter';
    for (let n = 2; existsSync(join(root, `${suggestion}.moslora.yaml`)); n++) suggestion = `adapter-${n}`;
    const name = await vscode.window.showInputBox({
      title: 'MoSLoRA: New Adapter Config',
      prompt: `Name of the config (written as NAME.moslora.yaml in ${folder.name})`,
      value: suggestion,
      validateInput: (value) =>
        !/^[A-Za-z0-9._-]+$/.test(value) ? 'letters, digits, ".", "_" and "-" only' : existsSync(join(root, `${value}.moslora.yaml`)) ? `${value}.moslora.yaml exists` : undefined,
    });
    if (!name) return;
    const file = join(root, `${name}.moslora.yaml`);
    const template = await templateFor(root);
    if (!template) return;
    await writeFile(file, configTemplate(template.paths, template.about, template.notes), { flag: 'wx' });
    ctx.log.info(`new config ${file}: model ${template.paths.model}, data ${template.paths.train}${template.paths.eval ? ` and ${template.paths.eval}` : ''} (${template.about})`);
    await vscode.window.showTextDocument(vscode.Uri.file(file));
  };
}

interface Template {
  paths: TemplatePaths;
  about: 'example' | 'found' | 'placeholders';
  notes: string[];
}

/**
 * What a new config in `root` trains: the shipped example when the workspace holds examples/;
 * else the model folder and the data found in the workspace, asking only where there is a
 * choice (or nothing found: browse, or leave a placeholder). Undefined when the user cancels.
 */
async function templateFor(root: string): Promise<Template | undefined> {
  const examples = join(root, 'examples');
  if (existsSync(join(examples, 'tiny-model', 'config.json')) && existsSync(join(examples, 'tiny-task', 'train.jsonl'))) {
    return { paths: examplePaths(root, examples), about: 'example', notes: [] };
  }
  const found = await vscode.window.withProgress({ location: vscode.ProgressLocation.Window, title: 'MoSLoRA: looking for models and data' }, () => scanWorkspace(root));
  const model = await pickModel(root, found.models);
  if (model === undefined) return undefined;
  const train = await pickTrain(root, trainCandidates(found.datasets));
  if (train === undefined) return undefined;
  const rel = (path: string) => relativeToConfig(root, path);
  const notes: string[] = [];
  let eval_: FoundDataset | undefined;
  if (train) {
    eval_ = evalFor(train, found.datasets);
    const others = found.datasets.filter((d) => d !== eval_ && d.file !== train.file && dirname(d.file) === dirname(train.file) && d.kind !== undefined);
    if (others.length) notes.push(`Also beside the data: ${others.map((d) => `${basename(d.file)} (${d.kind === 'choices' ? 'multiple choice: eval loss and accuracy' : d.kind})`).join(', ')}.`);
  }
  if (found.truncated) notes.push('The workspace is large: only part of it was searched for models and data.');
  if (!model && !train) return { paths: PLACEHOLDER_PATHS, about: 'placeholders', notes };
  return {
    paths: {
      model: model ? rel(model.dir) : PLACEHOLDER_PATHS.model,
      train: train ? rel(train.file) : PLACEHOLDER_PATHS.train,
      ...(eval_ ? { eval: rel(eval_.file) } : {}),
      ...(train?.kind ? { format: formatOf(train.kind) } : {}),
      targetModules: targetModulesFor(model?.architecture),
    },
    about: model && train ? 'found' : 'placeholders',
    notes,
  };
}

type Choice<T> = vscode.QuickPickItem & { value: T | 'browse' | 'placeholder' };

/** One found: it. Several: a pick. None: browse or a placeholder. `null`: a placeholder; undefined: cancelled. */
async function pickOne<T>(title: string, found: readonly T[], item: (value: T) => vscode.QuickPickItem, what: string, placeHolder: string): Promise<T | 'browse' | null | undefined> {
  if (found.length === 1) return found[0]!;
  const items: Choice<T>[] = [
    ...found.map((value) => ({ ...item(value), value })),
    { label: `$(folder-opened) Browse for ${what}…`, value: 'browse' as const },
    { label: `$(edit) Leave a placeholder for ${what}`, detail: 'the config shows it as a problem until you fill it in', value: 'placeholder' as const },
  ];
  const picked = await vscode.window.showQuickPick(items, { title, placeHolder: found.length ? placeHolder : `no ${what} in this workspace: browse for one, or leave a placeholder` });
  if (!picked) return undefined;
  return picked.value === 'placeholder' ? null : picked.value;
}

async function pickModel(root: string, models: readonly FoundModel[]): Promise<FoundModel | null | undefined> {
  const title = 'MoSLoRA: New Adapter Config: the base model';
  const picked = await pickOne(
    title,
    models,
    (m) => ({ label: relativeToConfig(root, m.dir), ...(m.architecture ? { description: m.architecture } : {}) }),
    'a model folder',
    'a Hugging Face model folder (config.json and *.safetensors)',
  );
  if (picked !== 'browse') return picked;
  const [folder] = (await vscode.window.showOpenDialog({ title, canSelectFolders: true, canSelectFiles: false, openLabel: 'Use This Model' })) ?? [];
  if (!folder) return undefined;
  if (!existsSync(join(folder.fsPath, 'config.json'))) throw new Error(`${folder.fsPath} is not a Hugging Face model folder: it has no config.json`);
  return modelAt(folder.fsPath);
}

/** The one file named like training data, else a pick among every dataset that can train. */
async function pickTrain(root: string, datasets: readonly FoundDataset[]): Promise<FoundDataset | null | undefined> {
  const title = 'MoSLoRA: New Adapter Config: the training data';
  const named = datasets.filter(namedForTraining);
  if (named.length === 1) return named[0]!;
  const picked = await pickOne(title, datasets, (d) => ({ label: relativeToConfig(root, d.file), description: d.kind ?? '' }), 'training data', 'the training data (JSONL)');
  if (picked !== 'browse') return picked;
  const [file] = (await vscode.window.showOpenDialog({ title, canSelectFiles: true, canSelectFolders: false, filters: { JSONL: ['jsonl'] }, openLabel: 'Train on This' })) ?? [];
  if (!file) return undefined;
  return datasetAt(file.fsPath);
}

/** The config a command is about: its argument (a code lens passes the URI), the active editor, or a pick. */
async function configUri(ctx: Ctx, arg: unknown, title: string): Promise<vscode.Uri | undefined> {
  if (typeof arg === 'string') return vscode.Uri.parse(arg);
  if (arg instanceof vscode.Uri) return arg;
  const active = vscode.window.activeTextEditor?.document;
  if (active?.languageId === 'moslora-config') return active.uri;
  const configs = await ctx.findConfigs();
  if (configs.length === 0) {
    const choice = await vscode.window.showInformationMessage('MoSLoRA: there is no *.moslora.yaml in this workspace.', 'New Adapter Config');
    if (choice) await vscode.commands.executeCommand(commandIds.newConfig);
    return undefined;
  }
  if (configs.length === 1) return configs[0];
  const items = configs
    .map((uri) => ({ label: basename(uri.fsPath), description: vscode.workspace.asRelativePath(dirname(uri.fsPath)), uri }))
    .sort((a, b) => a.description.localeCompare(b.description) || a.label.localeCompare(b.label));
  return (await vscode.window.showQuickPick(items, { title, placeHolder: 'an adapter config' }))?.uri;
}

function startTraining(ctx: Ctx): Cmd {
  return async (arg) => {
    if (!trusted('Training')) return;
    const uri = await configUri(ctx, arg, 'MoSLoRA: Start Training');
    if (!uri) return;
    await start(ctx, uri);
  };
}

/** Queues a job for the config at `uri` (continuing `resumeRunDir` when given) and shows the panel. */
async function start(ctx: Ctx, uri: vscode.Uri, resumeRunDir?: string): Promise<void> {
  if (uri.scheme !== 'file') throw new Error(`${uri.toString(true)}: save the config to a file first; its paths are relative to it`);
  const document = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (document?.isDirty && !(await document.save())) return;
  const errors = vscode.languages.getDiagnostics(uri).filter((d) => d.severity === vscode.DiagnosticSeverity.Error);
  if (errors.length) {
    const first = errors[0]!;
    const choice = await vscode.window.showErrorMessage(
      `MoSLoRA: ${basename(uri.fsPath)} has ${errors.length === 1 ? 'an error' : `${errors.length} errors`}; fix ${errors.length === 1 ? 'it' : 'them'} first. Line ${first.range.start.line + 1}: ${first.message}`,
      'Show Problems',
    );
    if (choice) await vscode.commands.executeCommand('workbench.actions.view.problems');
    return;
  }
  const backend = ctx.config.backendOverride;
  const runsDir = ctx.config.runsDirectory;
  const job = await ctx.ready().client.sendRequest(startTrainingRequest, {
    configUri: uri.toString(),
    ...(resumeRunDir ? { resumeRunDir } : {}),
    ...(backend ? { backend } : {}),
    ...(runsDir ? { runsDir } : {}),
  });
  const tracked = ctx.receive({ job, metrics: [], mixers: [] });
  ctx.log.info(`${resumeRunDir ? `resumed ${resumeRunDir} as` : 'started'} job ${job.id} for ${uri.fsPath} (backend ${backend ?? "the config's"}, runs in ${runsDir ?? "the config's runs_dir"})`);
  // the panel shows the job's run as soon as the trainer names its run folder (a resumed one: at once)
  TrainingPanel.createOrShow(ctx, resumeRunDir ? { tab: 'training', runId: ctx.tracker.runIds.idOf(resumeRunDir) } : { tab: 'training', jobKey: tracked.key });
  if (tracked.job.state === 'queued') announceQueued(ctx, tracked);
}

/** A job that waits: say so, and what for, with a way to drop it. */
function announceQueued(ctx: Ctx, tracked: TrackedJob): void {
  const ahead = ctx.tracker.active().filter((t) => t !== tracked);
  const running = ahead.filter((t) => t.job.state !== 'queued').map((t) => t.name);
  const waiting = ahead.length - running.length;
  const after = [running.length ? running.join(', ') : '', waiting ? `${waiting} queued job${waiting === 1 ? '' : 's'}` : ''].filter(Boolean).join(' and ');
  void vscode.window
    .showInformationMessage(`MoSLoRA: ${tracked.name} is queued: one job trains at a time, and it starts when ${after || 'the running job'} ends.`, 'Cancel Queued Job', 'Open Training Panel')
    .then((choice) => {
      if (choice === 'Cancel Queued Job') void vscode.commands.executeCommand(commandIds.stopTraining, tracked.key);
      if (choice === 'Open Training Panel') void vscode.commands.executeCommand(commandIds.openPanel);
    });
}

function resumeTraining(ctx: Ctx): Cmd {
  return async (arg) => {
    if (!trusted('Resume')) return;
    const runDir = typeof arg === 'string' ? arg : await pickResumable(ctx);
    if (!runDir) return;
    const name = basename(runDir);
    const busy = ctx.jobOfRun(runDir);
    if (busy) throw new Error(`${name} is ${busy.job.state === 'queued' ? 'already queued' : 'training'}: one job per run`);
    const steps = await checkpointSteps(runDir);
    if (!steps.length) {
      throw new Error(`${name} has no checkpoint to continue from (one is written every training.checkpoint_interval steps, and when a run is stopped); Start Training begins a new run`);
    }
    const config = await readRunConfig(runDir);
    if (!config?.configPath) throw new Error(`${join(runDir, 'config.yaml')} does not say which config the run was started from (no configPath)`);
    if (!existsSync(config.configPath)) {
      throw new Error(`${name} was started from ${config.configPath}, which is gone: put the config back to resume (${join(runDir, 'config.yaml')} holds what ran)`);
    }
    vscode.window.setStatusBarMessage(`MoSLoRA: resuming ${name} from step ${formatCount(steps.at(-1)!)}`, 5000);
    await start(ctx, vscode.Uri.file(config.configPath), runDir);
  };
}

/** A stopped or failed run with a checkpoint, newest first; undefined when none or cancelled. */
async function pickResumable(ctx: Ctx): Promise<string | undefined> {
  const { runs } = await ctx.listRuns();
  const resumable = runs.filter((run) => run.resumable);
  if (!resumable.length) {
    void vscode.window.showInformationMessage('MoSLoRA: no stopped or failed run with a checkpoint to resume here.');
    return undefined;
  }
  const items = resumable.map((run) => ({
    label: run.name,
    description: [run.state?.phase, run.state ? `step ${formatCount(run.state.step)}/${formatCount(run.state.total)}` : '', run.method ?? ''].filter(Boolean).join(' · '),
    ...(run.state?.reason ? { detail: run.state.reason } : {}),
    runDir: ctx.tracker.runIds.dirOf(run.runId),
  }));
  const picked = items.length === 1 ? items[0] : await vscode.window.showQuickPick(items, { title: 'MoSLoRA: Resume Training', placeHolder: 'the run to continue from its newest checkpoint' });
  return picked?.runDir;
}

async function pickJob(ctx: Ctx, arg: unknown): Promise<TrackedJob | undefined> {
  if (typeof arg === 'string') {
    const tracked = ctx.tracker.get(arg);
    if (tracked && !isFinal(tracked.job.state)) return tracked;
  }
  const active = ctx.tracker.active();
  if (active.length === 0) {
    void vscode.window.showInformationMessage('MoSLoRA: no training job is running.');
    return undefined;
  }
  if (active.length === 1) return active[0];
  const picked = await vscode.window.showQuickPick(
    active.map((tracked) => ({ label: tracked.name, description: `${tracked.job.state} · step ${tracked.job.step}/${tracked.job.totalSteps}`, tracked })),
    { title: 'MoSLoRA: Stop Training', placeHolder: 'the job to stop (it saves a checkpoint first)' },
  );
  return picked?.tracked;
}

function stopTraining(ctx: Ctx): Cmd {
  return async (arg) => {
    const tracked = await pickJob(ctx, arg);
    if (!tracked) return;
    const queued = tracked.job.state === 'queued';
    const job = await ctx.ready().client.sendRequest(cancelTrainingRequest, { jobId: tracked.job.id });
    ctx.receive({ job, metrics: [], mixers: [] });
    vscode.window.setStatusBarMessage(queued ? `MoSLoRA: ${tracked.name} left the queue` : `MoSLoRA: stopping ${tracked.name}; it saves a checkpoint first`, 5000);
  };
}

/**
 * The panel, on a run folder when given one (the "Open panel" code lens passes its run); else on
 * a live job's run, or the newest finished run (saying so when a newer one did not finish).
 */
function openPanel(ctx: Ctx): Cmd {
  return (arg) => {
    TrainingPanel.createOrShow(ctx, typeof arg === 'string' ? { tab: 'training', runId: ctx.tracker.runIds.idOf(arg) } : { tab: 'training', choose: 'run' });
  };
}

function estimate(ctx: Ctx): Cmd {
  return async (arg) => {
    const uri = await configUri(ctx, arg, 'MoSLoRA: Estimate');
    if (!uri) return;
    const report = await ctx.ready().client.sendRequest(estimateRequest, { configUri: uri.toString() });
    await vscode.window.showInformationMessage(`MoSLoRA estimate for ${basename(uri.fsPath)}`, { modal: true, detail: describeEstimate(report) });
  };
}

// ---------------------------------------------------------------------------------------------
// Adapters: merge, export, try

interface PickedAdapter {
  adapterDir: string;
  /** The run that trained it, when picked from the runs list. */
  run?: RunFolder;
  name: string;
}

async function pickAdapter(ctx: Ctx, title: string): Promise<PickedAdapter | undefined> {
  const { onDisk } = await ctx.listRuns();
  const withAdapter = onDisk.filter((run) => existsSync(join(run.runDir, 'adapter', 'adapter_config.json')));
  const browse = { label: '$(folder-opened) Browse for an adapter folder…', run: undefined };
  const items = [
    ...withAdapter.map((run) => {
      const loss = typeof run.summary?.finalLoss === 'number' ? ` · loss ${formatNumber(run.summary.finalLoss)}` : '';
      return { label: run.name, description: `${String(run.summary?.method ?? '')}${loss}`, detail: run.runDir, run };
    }),
    browse,
  ];
  const picked = await vscode.window.showQuickPick(items, { title, placeHolder: withAdapter.length ? 'a finished run' : 'no finished run here yet: browse for an adapter folder' });
  if (!picked) return undefined;
  if (picked.run) return { adapterDir: join(picked.run.runDir, 'adapter'), run: picked.run, name: picked.run.name };
  const [folder] = (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use This Adapter', title })) ?? [];
  if (!folder) return undefined;
  if (!existsSync(join(folder.fsPath, 'adapter_config.json'))) {
    throw new Error(`${folder.fsPath} is not an adapter folder: it has no adapter_config.json (a run's adapter is in runs/NAME/adapter)`);
  }
  return { adapterDir: folder.fsPath, name: basename(folder.fsPath) };
}

async function askOutDir(title: string, prompt: string, value: string): Promise<string | undefined> {
  return vscode.window.showInputBox({
    title,
    prompt,
    value,
    validateInput: (v) => (isAbsolute(v.trim()) ? undefined : 'an absolute folder path'),
  }).then((v) => v?.trim());
}

/**
 * A long server request under a cancellable progress notification; undefined when cancelled.
 * Cancelling sends $/cancelRequest, and the server kills the CLI child that does the work.
 */
async function withCancel<R>(ctx: Ctx, title: string, request: (client: LanguageClient, token: vscode.CancellationToken) => Promise<R>): Promise<R | undefined> {
  const { client } = ctx.ready();
  return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `MoSLoRA: ${title}`, cancellable: true }, async (_progress, token) => {
    try {
      return await request(client, token);
    } catch (error) {
      if (token.isCancellationRequested) {
        ctx.log.info(`${title}: cancelled`);
        return undefined;
      }
      throw error;
    }
  });
}

function mergeAdapter(ctx: Ctx): Cmd {
  return async (arg) => {
    if (!trusted('Merging')) return;
    const title = 'MoSLoRA: Merge Adapter into Base Model';
    // the "Merge" code lens passes its run's adapter folder: no pick
    const adapter = typeof arg === 'string' ? { adapterDir: arg, name: basename(dirname(arg)) } : await pickAdapter(ctx, title);
    if (!adapter) return;
    const outDir = await askOutDir(title, "Folder for the merged model, in the base model's own layout", join(adapter.run?.runDir ?? dirname(adapter.adapterDir), 'merged'));
    if (!outDir) return;
    let force = false;
    if (existsSync(outDir)) {
      const choice = await vscode.window.showWarningMessage(`${outDir} exists. Replace it with the merged model?`, { modal: true }, 'Replace');
      if (choice !== 'Replace') return;
      force = true;
    }
    const result = await withCancel(ctx, `merging ${adapter.name} into its base model`, (client, token) =>
      client.sendRequest(mergeAdapterRequest, { adapterDir: adapter.adapterDir, outDir, force }, token),
    );
    if (!result) return;
    ctx.log.info(`merged ${adapter.adapterDir} → ${result.outDir}: ${result.mergedModules} modules, max |Δlogit| ${result.maxAbsLogitDiff}; ${describeQuantisationCost(result.quantisation)}`);
    await offerFolder(
      `MoSLoRA: merged ${result.mergedModules} modules into ${result.outDir}. Largest logit difference against base + adapter: ${result.maxAbsLogitDiff.toExponential(1)}.${quantisationNote(result.quantisation)}`,
      result.outDir,
    );
  };
}

function exportAdapter(ctx: Ctx): Cmd {
  return async () => {
    if (!trusted('Export')) return;
    const title = 'MoSLoRA: Export PEFT Adapter';
    const adapter = await pickAdapter(ctx, title);
    if (!adapter) return;
    const outDir = await askOutDir(title, 'Folder for the plain-LoRA adapter (PEFT layout; the mixer folded in: A′ = M·A)', join(adapter.run?.runDir ?? dirname(adapter.adapterDir), 'peft-export'));
    if (!outDir) return;
    let force = false;
    if (existsSync(outDir)) {
      const choice = await vscode.window.showWarningMessage(`${outDir} exists. Replace it with the export?`, { modal: true }, 'Replace');
      if (choice !== 'Replace') return;
      force = true;
    }
    const result = await withCancel(ctx, `exporting ${adapter.name} as a PEFT LoRA adapter`, (client, token) =>
      client.sendRequest(exportAdapterRequest, { adapterDir: adapter.adapterDir, outDir, force }, token),
    );
    if (!result) return;
    ctx.log.info(`exported ${adapter.adapterDir} → ${result.outDir}: ${result.modules} modules; ${describeQuantisationCost(result.quantisation)}`);
    await offerFolder(`MoSLoRA: exported ${result.modules} modules to ${result.outDir}; PEFT loads it as an ordinary LoRA adapter.${quantisationNote(result.quantisation)}`, result.outDir);
  };
}

/** What a quantised base cost, for a merge's or an export's message: nothing where the base was not quantised (the log says why). */
function quantisationNote(cost: QuantisationCost): string {
  if (cost.status === 'not-quantised') return '';
  const text = describeQuantisationCost(cost);
  return ` ${text.charAt(0).toUpperCase()}${text.slice(1)}.`;
}

const PROMPT_KEY = 'moslora.try.prompt';
const MAX_NEW_TOKENS = 32;

/** The first prompt of the run's eval (else train) data: something the adapter was trained for. */
async function examplePrompt(runDir: string): Promise<string | undefined> {
  try {
    const { parse } = await import('yaml');
    const config = parse(await readFile(join(runDir, 'config.yaml'), 'utf8')) as { data?: { eval?: string; train?: string } };
    const file = config.data?.eval ?? config.data?.train;
    if (!file) return undefined;
    const first = (await readFile(file, 'utf8')).split('\n', 1)[0];
    const record = first ? (JSON.parse(first) as { prompt?: unknown; instruction?: unknown; text?: unknown }) : undefined;
    const prompt = record?.prompt ?? record?.instruction;
    return typeof prompt === 'string' ? prompt : undefined;
  } catch {
    return undefined;
  }
}

function tryAdapter(ctx: Ctx): Cmd {
  const channel = vscode.window.createOutputChannel('MoSLoRA Try Adapter');
  ctx.extension.subscriptions.push(channel);
  return async () => {
    if (!trusted('Try Adapter')) return;
    const title = 'MoSLoRA: Try Adapter';
    const adapter = await pickAdapter(ctx, title);
    if (!adapter) return;
    let modelDir = adapter.run ? (await readRunConfig(adapter.run.runDir))?.model : undefined;
    if (!modelDir || !existsSync(modelDir)) {
      const [folder] = (await vscode.window.showOpenDialog({ canSelectFolders: true, canSelectFiles: false, openLabel: 'Use This Base Model', title: `${title}: the base model folder` })) ?? [];
      if (!folder) return;
      modelDir = folder.fsPath;
    }
    const remembered = ctx.extension.workspaceState.get<string>(PROMPT_KEY);
    const example = adapter.run ? await examplePrompt(adapter.run.runDir) : undefined;
    const typed = await vscode.window.showInputBox({
      title,
      prompt: 'Prompt (write \\n for a new line). The base model and the base model with the adapter both continue it.',
      value: (remembered ?? example ?? '').replace(/\n/g, '\\n'),
    });
    if (typed === undefined) return;
    await ctx.extension.workspaceState.update(PROMPT_KEY, typed.replace(/\\n/g, '\n'));
    const prompt = typed.replace(/\\n/g, '\n');
    const { client } = ctx.ready();
    const outputs = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `MoSLoRA: generating with ${adapter.name}`, cancellable: true },
      async (progress, token) => {
        try {
          progress.report({ message: 'base model' });
          const base = await client.sendRequest(generateRequest, { modelDir: modelDir!, prompt, maxNewTokens: MAX_NEW_TOKENS }, token);
          progress.report({ message: 'with the adapter' });
          const tuned = await client.sendRequest(generateRequest, { modelDir: modelDir!, adapterDir: adapter.adapterDir, prompt, maxNewTokens: MAX_NEW_TOKENS }, token);
          return { base, tuned };
        } catch (error) {
          if (token.isCancellationRequested) return undefined;
          throw error;
        }
      },
    );
    if (!outputs) return;
    channel.appendLine(`── ${new Date().toLocaleTimeString()} · ${basename(modelDir)} · adapter ${adapter.name} · greedy, ${MAX_NEW_TOKENS} new tokens at most`);
    channel.appendLine(`prompt:        ${JSON.stringify(prompt)}`);
    channel.appendLine(`base model:    ${JSON.stringify(outputs.base.text)} (${outputs.base.tokens} tokens)`);
    channel.appendLine(`with adapter:  ${JSON.stringify(outputs.tuned.text)} (${outputs.tuned.tokens} tokens)`);
    channel.appendLine('');
    channel.show(true);
  };
}

// ---------------------------------------------------------------------------------------------
// Backend, server, environment

const BACKEND_DETAILS: Record<BackendPreference, string> = {
  auto: "as the config's `backend` says (auto there: the first that starts of tensorflow, webgpu, wasm, cpu)",
  tensorflow: 'libtensorflow through @tensorflow/tfjs-node(-gpu): CUDA on NVIDIA machines where it installed',
  webgpu: 'any GPU with Vulkan, Metal or D3D12 (Dawn for Node: the `webgpu` package)',
  wasm: "CPU with WebAssembly SIMD, the embedded default: matrix products on onnxruntime's MLAS where onnxruntime-node is installed (it ships in the extension), else on XNNPACK (a run's device says which)",
  cpu: 'plain JavaScript: the last resort',
};

function selectBackend(ctx: Ctx): Cmd {
  return async () => {
    const current = ctx.config.backend;
    const quickPick = vscode.window.createQuickPick<vscode.QuickPickItem & { backend: BackendPreference }>();
    quickPick.title = 'MoSLoRA: Select Backend (moslora.backend, for the next job)';
    quickPick.items = BACKEND_PREFERENCES.map((backend) => ({
      backend,
      label: backend,
      description: backend === current ? '(current)' : '',
      detail: BACKEND_DETAILS[backend],
    }));
    quickPick.activeItems = quickPick.items.filter((item) => item.backend === current);
    quickPick.placeholder = 'checking which backends start here…';
    quickPick.busy = true;
    // what auto picks on this machine, and why it skipped the others (the server starts tfjs in a child)
    if (ctx.client) {
      ctx.client.sendRequest(environmentRequest).then(
        (report) => {
          const skipped = report.auto.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ');
          quickPick.placeholder = `here, auto picks ${report.auto.backend} (${report.auto.device})${skipped ? `; skipped ${skipped}` : ''}`;
          quickPick.busy = false;
        },
        (error: unknown) => {
          quickPick.placeholder = `could not check the backends: ${error instanceof Error ? error.message : String(error)}`;
          quickPick.busy = false;
        },
      );
    }
    const picked = await new Promise<BackendPreference | undefined>((resolve) => {
      quickPick.onDidAccept(() => resolve(quickPick.selectedItems[0]?.backend));
      quickPick.onDidHide(() => resolve(undefined));
      quickPick.show();
    });
    quickPick.dispose();
    if (!picked) return;
    const settings = vscode.workspace.getConfiguration(SECTION);
    // a workspace value would hide a user one: write where the effective value comes from
    const target = settings.inspect(SETTINGS.backend)?.workspaceValue !== undefined ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
    await settings.update(SETTINGS.backend, picked, target);
    vscode.window.setStatusBarMessage(`MoSLoRA: the next job runs on ${picked === 'auto' ? "the config's backend" : picked}`, 5000);
  };
}

function restartServer(ctx: Ctx): Cmd {
  return async () => {
    const active = ctx.tracker.active();
    if (active.length) {
      const choice = await vscode.window.showWarningMessage(
        `Restarting the MoSLoRA server stops ${active.map((t) => t.name).join(', ')} (a running job saves a checkpoint first).`,
        { modal: true },
        'Restart',
      );
      if (choice !== 'Restart') return;
    }
    await ctx.restartServer();
    vscode.window.setStatusBarMessage('MoSLoRA: server restarted', 5000);
  };
}

function showEnvironment(ctx: Ctx): Cmd {
  return async () => {
    const report = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: 'MoSLoRA: checking the compute backends' },
      () => ctx.ready().client.sendRequest(environmentRequest),
    );
    const skipped = report.auto.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ');
    void vscode.window.showInformationMessage(`MoSLoRA backend: ${report.auto.backend} (${report.auto.device})${skipped ? `. Skipped: ${skipped}` : ''}`);
  };
}
