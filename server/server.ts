// The language server: JSON-RPC over stdio only (no port another user could reach).
// Anything that touches tfjs runs in a child process, so a native crash never takes the
// server down.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createConnection, ProposedFeatures, TextDocumentSyncKind } from 'vscode-languageserver/node';
import { environmentRequest, type EnvironmentReport } from './protocol';

const connection = createConnection(ProposedFeatures.all);

connection.onInitialize(() => ({
  capabilities: { textDocumentSync: TextDocumentSyncKind.Incremental },
  serverInfo: { name: 'moslora-server' },
}));

connection.onRequest(environmentRequest, async (): Promise<EnvironmentReport> => {
  const { stdout } = await promisify(execFile)(process.execPath, [join(__dirname, 'cli.js'), 'backends', '--json'], {
    timeout: 120_000,
  });
  return JSON.parse(stdout) as EnvironmentReport;
});

connection.listen();
