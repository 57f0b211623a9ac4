import * as vscode from 'vscode';
import { LanguageClient, TransportKind, type LanguageClientOptions, type ServerOptions } from 'vscode-languageclient/node';
import { environmentRequest } from '../server/protocol';

let client: LanguageClient | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  const module = context.asAbsolutePath('dist/server.js');
  const serverOptions: ServerOptions = {
    run: { module, transport: TransportKind.stdio },
    debug: { module, transport: TransportKind.stdio, options: { execArgv: ['--nolazy', '--inspect=6009'] } },
  };
  const clientOptions: LanguageClientOptions = {
    documentSelector: [{ language: 'moslora-config' }],
  };
  client = new LanguageClient('moslora', 'MoSLoRA', serverOptions, clientOptions);
  context.subscriptions.push(
    vscode.commands.registerCommand('moslora.showEnvironment', async () => {
      const report = await client!.sendRequest(environmentRequest);
      const skipped = report.auto.skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ');
      void vscode.window.showInformationMessage(
        `MoSLoRA backend: ${report.auto.backend} (${report.auto.device})${skipped ? `. Skipped: ${skipped}` : ''}`,
      );
    }),
  );
  try {
    await client.start();
  } catch (error) {
    void vscode.window.showErrorMessage(`Cannot activate MoSLoRA Studio: ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
}

export function deactivate(): Thenable<void> | undefined {
  return client?.stop();
}
