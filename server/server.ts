// The language server: JSON-RPC over stdio only (no port another user could reach). This file is
// wiring; each feature lives in server/lsp/. Anything that touches tfjs runs in a child process,
// so a native crash never takes the server down. The server reads the files configs name and
// the folders around them; it never writes.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CodeActionKind, createConnection, ProposedFeatures, TextDocuments, TextDocumentSyncKind } from 'vscode-languageserver/node';
import { TextDocument } from 'vscode-languageserver-textdocument';
import { quickFixes } from './lsp/actions';
import { completeConfig, TRIGGER_CHARACTERS } from './lsp/completion';
import { DiagnosticsScheduler } from './lsp/diagnostics';
import { FactCache } from './lsp/facts';
import { hoverConfig } from './lsp/hover';
import { configLenses } from './lsp/lens';
import { environmentRequest, type EnvironmentReport } from './protocol';

const connection = createConnection(ProposedFeatures.all);
const documents = new TextDocuments(TextDocument);
const facts = new FactCache((path) => diagnostics.changed(path));
const diagnostics = new DiagnosticsScheduler(facts, documents, (uri, version, list) =>
  void connection.sendDiagnostics({ uri, ...(version ? { version } : {}), diagnostics: list }),
);

connection.onInitialize(() => ({
  capabilities: {
    textDocumentSync: TextDocumentSyncKind.Incremental,
    completionProvider: { triggerCharacters: TRIGGER_CHARACTERS },
    hoverProvider: true,
    codeActionProvider: { codeActionKinds: [CodeActionKind.QuickFix] },
    codeLensProvider: { resolveProvider: false },
  },
  serverInfo: { name: 'moslora-server' },
}));

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
connection.onCodeLens(({ textDocument }) => configLenses(textDocument.uri));

connection.onRequest(environmentRequest, async (): Promise<EnvironmentReport> => {
  const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, 'cli.js'), 'backends', '--json'], {
    timeout: 120_000,
  });
  return JSON.parse(stdout) as EnvironmentReport;
});

// Watchers and timers end with the session, so nothing keeps the process alive after `exit`.
connection.onShutdown(async () => {
  diagnostics.dispose();
  await facts.dispose();
});

documents.listen(connection);
connection.listen();
