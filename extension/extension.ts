// Activation: the context (language client, settings, jobs), the commands, the status bar and
// the panel's serializer. Each concern lives in its own file; this one only wires them.
import * as vscode from 'vscode';
import { registerCommands } from './commands';
import { Ctx } from './ctx';
import { registerPanelSerializer } from './panel';
import { JobStatusBar } from './statusBar';

let ctx: Ctx | undefined;

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  try {
    ctx = new Ctx(context);
    // the serializer first: a panel restored with the window asks for it right away
    context.subscriptions.push(ctx, registerPanelSerializer(ctx), ...registerCommands(ctx), new JobStatusBar(ctx));
    await ctx.start();
  } catch (error) {
    // VS Code shows nothing when activation fails: say it, then let VS Code record it
    void vscode.window.showErrorMessage(`Cannot activate MoSLoRA Studio: ${error instanceof Error ? error.message : String(error)}`);
    throw error;
  }
}

export function deactivate(): Promise<void> | undefined {
  return ctx?.shutdown();
}
