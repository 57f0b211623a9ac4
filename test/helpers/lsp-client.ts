// A JSON-RPC client for the built language server, speaking LSP over stdio as an editor does.
// Readiness is always a message from the server; the only timer is a guard that fails a test
// with what the server did say instead of hanging it.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  createProtocolConnection,
  DidChangeTextDocumentNotification,
  DidOpenTextDocumentNotification,
  ExitNotification,
  InitializedNotification,
  InitializeRequest,
  PublishDiagnosticsNotification,
  ShutdownRequest,
  StreamMessageReader,
  StreamMessageWriter,
  type ClientCapabilities,
  type Diagnostic,
  type ProtocolConnection,
} from 'vscode-languageserver-protocol/node';

export const SERVER = join(__dirname, '../../dist/server.js');
const GUARD_MS = 15_000;

interface Waiter {
  uri: string;
  predicate: (diagnostics: Diagnostic[]) => boolean;
  resolve: (diagnostics: Diagnostic[]) => void;
}

export class LspClient {
  readonly connection: ProtocolConnection;
  /** The latest diagnostics published for each URI. */
  readonly diagnostics = new Map<string, Diagnostic[]>();
  private readonly waiters: Waiter[] = [];
  private readonly versions = new Map<string, number>();
  stderr = '';

  private constructor(readonly child: ChildProcess) {
    child.stderr!.on('data', (chunk: Buffer) => (this.stderr += chunk.toString()));
    this.connection = createProtocolConnection(new StreamMessageReader(child.stdout!), new StreamMessageWriter(child.stdin!));
    this.connection.onNotification(PublishDiagnosticsNotification.type, ({ uri, diagnostics }) => {
      this.diagnostics.set(uri, diagnostics);
      for (const waiter of [...this.waiters]) {
        if (waiter.uri === uri && waiter.predicate(diagnostics)) {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          waiter.resolve(diagnostics);
        }
      }
    });
    this.connection.listen();
  }

  /** `capabilities` adds to the client capabilities every start declares (diagnostics with related information and versions). */
  static async start(rootDir: string, options: { server?: string; initializationOptions?: unknown; capabilities?: ClientCapabilities } = {}): Promise<LspClient> {
    const child = spawn(process.execPath, [options.server ?? SERVER, '--stdio'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const client = new LspClient(child);
    await client.connection.sendRequest(InitializeRequest.type, {
      processId: process.pid,
      initializationOptions: options.initializationOptions,
      rootUri: pathToFileURL(rootDir).href,
      capabilities: { textDocument: { publishDiagnostics: { relatedInformation: true, versionSupport: true } }, ...options.capabilities },
      workspaceFolders: [{ uri: pathToFileURL(rootDir).href, name: 'test' }],
    });
    await client.connection.sendNotification(InitializedNotification.type, {});
    return client;
  }

  /** Resolves with the first published diagnostics of `uri` (the latest ones included) that satisfy `predicate`. */
  waitForDiagnostics(uri: string, predicate: (diagnostics: Diagnostic[]) => boolean, what: string): Promise<Diagnostic[]> {
    const latest = this.diagnostics.get(uri);
    if (latest && predicate(latest)) return Promise.resolve(latest);
    return new Promise((resolve, reject) => {
      const guard = setTimeout(() => {
        const seen = (this.diagnostics.get(uri) ?? []).map((d) => `${d.range.start.line}:${d.range.start.character} ${typeof d.message === 'string' ? d.message : d.message.value}`);
        reject(new Error(`no diagnostics for ${uri} where ${what} within ${GUARD_MS} ms; latest:\n${seen.join('\n')}\nserver stderr:\n${this.stderr}`));
      }, GUARD_MS);
      this.waiters.push({
        uri,
        predicate,
        resolve: (diagnostics) => {
          clearTimeout(guard);
          resolve(diagnostics);
        },
      });
    });
  }

  async open(uri: string, text: string): Promise<void> {
    this.versions.set(uri, 1);
    await this.connection.sendNotification(DidOpenTextDocumentNotification.type, { textDocument: { uri, languageId: 'moslora-config', version: 1, text } });
  }

  /** Replaces the whole text, as an editor may. */
  async change(uri: string, text: string): Promise<void> {
    const version = (this.versions.get(uri) ?? 1) + 1;
    this.versions.set(uri, version);
    await this.connection.sendNotification(DidChangeTextDocumentNotification.type, { textDocument: { uri, version }, contentChanges: [{ text }] });
  }

  /** Shuts the server down as an editor does and resolves with its exit code. */
  async stop(): Promise<number | null> {
    const exited = once(this.child, 'exit');
    await this.connection.sendRequest(ShutdownRequest.type);
    await this.connection.sendNotification(ExitNotification.type);
    const [code] = (await exited) as [number | null];
    this.connection.dispose();
    return code;
  }
}
