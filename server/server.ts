// The language server: JSON-RPC over stdio only (no port another user could reach). This file is
// wiring; each feature lives in server/lsp/. Anything that touches tfjs runs in a child process,
// so a native crash never takes the server down. The server reads the files configs name and
// the folders around them; only trainer processes it starts write, into the runs folders. Every
// custom request's params are checked (protocol/editor.ts) before anything acts on them, and
// the paths they name must lie in the workspace (server/workspace.ts).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CodeActionKind,
  CodeLensRefreshRequest,
  createConnection,
  ErrorCodes,
  LSPErrorCodes,
  ProposedFeatures,
  ResponseError,
  TextDocuments,
  TextDocumentSyncKind,
  type CancellationToken,
  type RequestType,
} from 'vscode-languageserver/node';
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
import { loadTaskConfig } from './tasks/config';
import { estimateConfig } from './tasks/estimate';
import { listRunsWithAb, runAbTask } from './tasks/ab';
import {
  abProgressNotification,
  abTestRequest,
  cancelTrainingRequest,
  combineAdaptersRequest,
  environmentRequest,
  estimateRequest,
  exportAdapterRequest,
  generateRequest,
  jobUpdateNotification,
  listJobsRequest,
  listRunsRequest,
  mergeAdapterRequest,
  parseAbTestParams,
  parseCancelTrainingParams,
  parseCombineParams,
  parseEstimateParams,
  parseExportParams,
  parseGenerateParams,
  parseListRunsParams,
  parseMergeParams,
  parseRunDataParams,
  parseStartTrainingParams,
  runDataRequest,
  serverSettingsOf,
  settingsNotification,
  startTrainingRequest,
} from '../protocol/editor';
import type { Parsed } from '../protocol/checks';
import type { CliCommand, CliResults } from '../protocol/cli';
import { PathRefused, WorkspaceRoots } from './workspace';

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);
const facts = new FactCache((path) => diagnostics.changed(path));
const diagnostics = new DiagnosticsScheduler(facts, documents, (uri, version, list) =>
  void connection.sendDiagnostics({ uri, ...(version ? { version } : {}), diagnostics: list }),
);

/** Whether the client re-asks for code lenses when told (`workspace/codeLens/refresh`). */
let lensRefresh = false;
/** Whether the client tells of workspace folders added and removed. */
let folderChanges = false;
const roots = new WorkspaceRoots();

function refreshLenses(): void {
  if (lensRefresh) void connection.sendRequest(CodeLensRefreshRequest.type).catch(() => undefined);
}

function useSettings(received: unknown): void {
  roots.setRunsDirectory(serverSettingsOf(received).runsDirectory);
}

const folderPaths = (folders: readonly { uri: string }[]) => folders.map(({ uri }) => filePathOf(uri)).filter((path): path is string => path !== null);

connection.onInitialize(({ capabilities: client, initializationOptions, workspaceFolders, rootUri, rootPath }) => {
  lensRefresh = client.workspace?.codeLens?.refreshSupport === true;
  folderChanges = client.workspace?.workspaceFolders === true;
  useSettings(initializationOptions);
  roots.setFolders(workspaceFolders ? folderPaths(workspaceFolders) : rootUri ? folderPaths([{ uri: rootUri }]) : rootPath ? [rootPath] : []);
  return {
    capabilities: {
      textDocumentSync: TextDocumentSyncKind.Incremental,
      completionProvider: { triggerCharacters: TRIGGER_CHARACTERS },
      hoverProvider: true,
      codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
      codeLensProvider: { resolveProvider: false },
      ...(folderChanges ? { workspace: { workspaceFolders: { supported: true, changeNotifications: true } } } : {}),
    },
    serverInfo: { name: 'moslora-server' },
  };
});
connection.onInitialized(() => {
  if (!folderChanges) return;
  connection.workspace.onDidChangeWorkspaceFolders(({ added, removed }) => roots.changeFolders(folderPaths(added), folderPaths(removed)));
});

// An opened config is checked at once, an edited one a short while after the last keystroke. The
// library fires a change right after each open: that one is the open's, not an edit.
const opening = new Set<string>();
documents.onDidOpen(({ document }) => {
  opening.add(document.uri);
  diagnostics.schedule(document.uri, 0);
});
documents.onDidChangeContent(({ document }) => {
  if (!opening.delete(document.uri)) diagnostics.schedule(document.uri);
});
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
    roots.runsDirectory,
    jobs.list().flatMap((job) => (job.runDir && (job.state === 'loading' || job.state === 'training' || job.state === 'saving') ? [job.runDir] : [])),
    (dir) =>
      roots.confine(dir, 'output.runs_dir').then(
        () => true,
        () => false,
      ),
  ),
);
connection.onNotification(settingsNotification, (received) => {
  useSettings(received);
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

/**
 * Answers `type` with `run` once `parse` accepts its params; refusals are InvalidParams errors of
 * one line that say which key and why, and a failure of the work is a RequestFailed error of one
 * line that starts with the method. Params by position are refused: the cancellation token
 * always comes last, so it is taken from there, never from a params array.
 */
function handle<P, R>(type: RequestType<P, R, void>, parse: (value: unknown) => Parsed<P>, run: (params: P, token: CancellationToken) => R | Promise<R>): void {
  connection.onRequest(type.method, async (...args: unknown[]) => {
    const token = args.pop() as CancellationToken;
    if (args.length !== 1) throw new ResponseError(ErrorCodes.InvalidParams, `${type.method}: params: expected one object, got ${args.length} values by position`);
    const params = parse(args[0]);
    if (!params.ok) throw new ResponseError(ErrorCodes.InvalidParams, `${type.method}: ${params.error}`);
    try {
      return await run(params.message, token);
    } catch (error) {
      if (error instanceof PathRefused) throw new ResponseError(ErrorCodes.InvalidParams, `${type.method}: ${error.message}`);
      if (error instanceof ResponseError) throw error;
      // the user sees the first line; the log keeps the rest
      const message = error instanceof Error ? error.message : String(error);
      const [first = '', ...rest] = message.split('\n');
      if (rest.length) connection.console.log(`${type.method}: ${message}`);
      throw new ResponseError(LSPErrorCodes.RequestFailed, `${type.method}: ${first}`);
    }
  });
}

/** The file a config URI names, inside the workspace. */
async function configFile(uri: string, where: string): Promise<string> {
  const path = filePathOf(uri);
  if (!path) throw new PathRefused(`${where}: ${uri.slice(0, 200)} is not a file; save the config to a file first, its paths are relative to it`);
  return roots.confine(path, where);
}

// The trainer writes only into the runs folder checked here: the request's runsDir, else the
// config's output.runs_dir, handed to it explicitly. A config that does not validate is refused
// before a trainer is forked.
handle(startTrainingRequest, parseStartTrainingParams, async ({ configUri, resumeRunDir, backend, runsDir }) => {
  const configPath = await configFile(configUri, 'configUri');
  const config = await loadTaskConfig(configPath);
  const runs = runsDir === undefined ? await roots.confine(config.output.runs_dir, 'output.runs_dir') : await roots.confine(roots.resolve(runsDir, 'runsDir', configPath), 'runsDir');
  return jobs.start({
    configPath,
    ...(resumeRunDir ? { resumeRunDir: await roots.confine(resumeRunDir, 'resumeRunDir') } : {}),
    ...(backend ? { backend } : {}),
    runsDir: runs,
  });
});
handle(cancelTrainingRequest, parseCancelTrainingParams, ({ jobId }) => jobs.cancel(jobId));
connection.onRequest(listJobsRequest, () => jobs.list());
handle(listRunsRequest, parseListRunsParams, async ({ runsDirs }) => {
  const confined = await Promise.all(runsDirs.map((dir, i) => roots.confine(dir, `runsDirs[${i}]`)));
  return (await Promise.all(confined.map((dir) => listRunsWithAb(dir, (warning) => connection.console.warn(warning))))).flat();
});
handle(runDataRequest, parseRunDataParams, async ({ runDir }) => {
  const run = new RunDirectory(await roots.confine(runDir, 'runDir'));
  return { runDir, metrics: await run.readMetrics(), mixers: await run.readMixers(), summary: await run.readSummary() };
});

handle(estimateRequest, parseEstimateParams, async ({ configUri }) => estimateConfig(await configFile(configUri, 'configUri'), facts, documents.get(configUri)?.getText()));

// Merge, export, combine and generate load models or adapters: each runs the CLI in a child
// process, killed on cancel. Paths go after `--`, so none is ever read as an option.
const cli = <K extends CliCommand>(command: K, options: string[], paths: string[], token: CancellationToken) =>
  runCliJson<CliResults[K]>([command, ...options, '--json', '--', ...paths], { cli: join(__dirname, 'cli.js'), token, onStderr: (line) => connection.console.log(`[${command}] ${line}`) });
handle(combineAdaptersRequest, parseCombineParams, async ({ adapterDirs, method, weights, rank, outDir }, token) => {
  const adapters = await Promise.all(adapterDirs.map((dir, i) => roots.confine(dir, `adapterDirs[${i}]`)));
  const out = await roots.confine(outDir, 'outDir');
  return cli('combine', ['--method', method, ...(weights ? ['--weights', weights.join(',')] : []), ...(rank ? ['--rank', String(rank)] : []), '--out', out], adapters, token);
});
handle(mergeAdapterRequest, parseMergeParams, async ({ adapterDir, outDir, force }, token) => {
  const [adapter, out] = [await roots.confine(adapterDir, 'adapterDir'), await roots.confine(outDir, 'outDir')];
  return cli('merge', ['--out', out, ...(force ? ['--force'] : [])], [adapter], token);
});
handle(exportAdapterRequest, parseExportParams, async ({ adapterDir, outDir, force }, token) => {
  const [adapter, out] = [await roots.confine(adapterDir, 'adapterDir'), await roots.confine(outDir, 'outDir')];
  return cli('export', ['--out', out, ...(force ? ['--force'] : [])], [adapter], token);
});
handle(generateRequest, parseGenerateParams, async ({ modelDir, adapterDir, prompt, maxNewTokens }, token) => {
  const model = await roots.confine(modelDir, 'modelDir');
  const adapter = adapterDir ? await roots.confine(adapterDir, 'adapterDir') : undefined;
  return cli('generate', [...(adapter ? ['--adapter', adapter] : []), '--prompt', prompt, '--max-new-tokens', String(maxNewTokens)], [model], token);
});

handle(abTestRequest, parseAbTestParams, async (params, token) => {
  const configPath = await configFile(params.configUri, 'configUri');
  const runsDir = params.runsDir === undefined ? undefined : await roots.confine(params.runsDir, 'runsDir');
  return runAbTask(configPath, { ...params, ...(runsDir === undefined ? {} : { runsDir }) }, {
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
