// The language server: JSON-RPC over stdio only (no port another user could reach). This file is
// wiring; each feature lives in server/lsp/. Anything that touches tfjs runs in a child process,
// so a native crash never takes the server down. The server reads the files configs name and
// the folders around them; only trainer processes it starts write, into the runs folders.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CodeActionKind, CodeLensRefreshRequest, createConnection, type CancellationToken, ProposedFeatures, TextDocuments, TextDocumentSyncKind } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { quickFixes } from './lsp/actions';
import { completeConfig, TRIGGER_CHARACTERS } from './lsp/completion';
import { DiagnosticsScheduler } from './lsp/diagnostics';
import { FactCache } from './lsp/facts';
import { hoverConfig } from './lsp/hover';
import { RunDirectory } from './engine/runs';
import { JobManager } from './jobs/manager';
import { filePathOf } from './lsp/document';
import { configLenses } from './lsp/lens';
import { runCliJson } from './tasks/cli-task';
import { estimateConfig } from './tasks/estimate';
import { listRunsWithAb, runAbTask } from './tasks/ab';
import { abProgressNotification, abTestRequest, cancelTrainingRequest, environmentRequest, estimateRequest, exportAdapterRequest, generateRequest, combineAdaptersRequest, mergeAdapterRequest, jobUpdateNotification, listJobsRequest, listRunsRequest, runDataRequest, serverSettingsOf, settingsNotification, startTrainingRequest, type ServerSettings } from '../protocol/editor';
import type { CliCommand, CliResults } from '../protocol/cli';

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);
const facts = new FactCache((path) => diagnostics.changed(path));
const diagnostics = new DiagnosticsScheduler(facts, documents, (uri, version, list) =>
  void connection.sendDiagnostics({ uri, ...(version ? { version } : {}), diagnostics: list }),
);

/** Whether the client re-asks for code lenses when told (`workspace/codeLens/refresh`). */
let lensRefresh = false;
let settings: ServerSettings = serverSettingsOf(null);

function refreshLenses(): void {
  if (lensRefresh) void connection.sendRequest(CodeLensRefreshRequest.type).catch(() => undefined);
}

connection.onInitialize(({ capabilities: client, initializationOptions }) => {
  lensRefresh = client.workspace?.codeLens?.refreshSupport === true;
  settings = serverSettingsOf(initializationOptions);
  return {
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      completionProvider: { triggerCharacters: TRIGGER_CHARACTERS },
      hoverProvider: true,
      codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
      codeLensProvider: { resolveProvider: false },
    },
    serverInfo: { name: 'moslora-server' },
  };
});

documents.onDidOpen(({ document }) => diagnostics.schedule(document.uri, 0));
documents.onDidChangeContent(({ document }) => diagnostics.schedule(document.uri));
documents.onDidClose(({ document }) => diagnostics.close(document.uri));

connection.onCompletion(({ textDocument, position }) => {
  const document = documents.get(textDocument.uri);
  return document ? completeConfig(document.uri, document.getText(), position, facts) : [];
});
connection.onHover(({ textDocument, position }) => {
  const document = documents.get(textDocument.uri);
  return document ? hoverConfig(document.uri, document.getText(), position, facts) : null;
});
connection.onCodeAction((params) => quickFixes(params));
connection.onCodeLens(({ textDocument }) =>
  configLenses(
    textDocument.uri,
    documents.get(textDocument.uri)?.getText() ?? '',
    settings.runsDirectory,
    jobs.list().flatMap((job) => (job.runDir && (job.state === 'loading' || job.state === 'training' || job.state === 'saving') ? [job.runDir] : [])),
  ),
);
connection.onNotification(settingsNotification, (received) => {
  settings = serverSettingsOf(received);
  refreshLenses();
});

const jobs = new JobManager({
  trainerModule: join(__dirname, 'trainer.js'),
  log: (line) => connection.console.error(line),
  onUpdate: (update) => {
    void connection.sendNotification(jobUpdateNotification, update);
    // A run that starts or ends changes its config's lenses ("Open panel", "Merge", "Resume").
    if (['loading', 'done', 'cancelled', 'failed'].includes(update.job.state)) refreshLenses();
  },
});

connection.onRequest(startTrainingRequest, ({ configUri, resumeRunDir, backend, runsDir }) => {
  const configPath = filePathOf(configUri);
  if (!configPath) throw new Error(`${configUri}: save the config to a file first; training reads its paths relative to it`);
  return jobs.start({ configPath, ...(resumeRunDir ? { resumeRunDir } : {}), ...(backend ? { backend } : {}), ...(runsDir ? { runsDir } : {}) });
});
connection.onRequest(cancelTrainingRequest, ({ jobId }) => jobs.cancel(jobId));
connection.onRequest(listJobsRequest, () => jobs.list());
connection.onRequest(listRunsRequest, async ({ runsDirs }) => (await Promise.all(runsDirs.map((dir) => listRunsWithAb(dir, (warning) => connection.console.warn(warning))))).flat());
connection.onRequest(runDataRequest, async ({ runDir }) => {
  const run = new RunDirectory(runDir);
  return { runDir, metrics: await run.readMetrics(), mixers: await run.readMixers(), summary: await run.readSummary() };
});

connection.onRequest(estimateRequest, ({ configUri }) => {
  const configPath = filePathOf(configUri);
  if (!configPath) throw new Error(`${configUri}: save the config to a file first; its paths are relative to it`);
  return estimateConfig(configPath, facts, documents.get(configUri)?.getText());
});

// Merge, export, combine and generate load models or adapters: each runs the CLI in a child process, killed on cancel.
const cli = <K extends CliCommand>(command: K, args: string[], token: CancellationToken) =>
  runCliJson<CliResults[K]>([command, ...args, '--json'], { cli: join(__dirname, 'cli.js'), token, onStderr: (line) => connection.console.log(`[${command}] ${line}`) });
connection.onRequest(combineAdaptersRequest, ({ adapterDirs, method, weights, rank, outDir }, token) =>
  cli('combine', [...adapterDirs, '--method', method, ...(weights ? ['--weights', weights.join(',')] : []), ...(rank ? ['--rank', String(rank)] : []), '--out', outDir], token),
);
connection.onRequest(mergeAdapterRequest, ({ adapterDir, outDir, force }, token) => cli('merge', [adapterDir, '--out', outDir, ...(force ? ['--force'] : [])], token));
connection.onRequest(exportAdapterRequest, ({ adapterDir, outDir, force }, token) => cli('export', [adapterDir, '--out', outDir, ...(force ? ['--force'] : [])], token));
connection.onRequest(generateRequest, ({ modelDir, adapterDir, prompt, maxNewTokens }, token) =>
  cli('generate', [modelDir, ...(adapterDir ? ['--adapter', adapterDir] : []), '--prompt', prompt, '--max-new-tokens', String(maxNewTokens)], token),
);

connection.onRequest(abTestRequest, (params, token) => {
  const configPath = filePathOf(params.configUri);
  if (!configPath) throw new Error(`${params.configUri}: save the config to a file first; its paths are relative to it`);
  return runAbTask(configPath, params, {
    cli: join(__dirname, 'cli.js'),
    token,
    onProgress: (progress) => {
      if (params.progressId) void connection.sendNotification(abProgressNotification, { progressId: params.progressId, progress });
    },
    onLog: (line) => connection.console.log(`[ab] ${line}`),
  });
});

connection.onRequest(environmentRequest, async (): Promise<CliResults['backends']> => {
  const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, 'cli.js'), 'backends', '--json'], {
    timeout: 120_000,
  });
  return JSON.parse(stdout) as CliResults['backends'];
});

// Watchers and timers end with the session, so nothing keeps the process alive after `exit`.
connection.onShutdown(async () => {
  diagnostics.dispose();
  await Promise.all([facts.dispose(), jobs.shutdown(10_000)]);
});

documents.listen(connection);
connection.listen();
