// What the user gets after an operation wrote something: a notification that says what and
// where, with a way to it. A folder or file inside the workspace is revealed in the Explorer; a
// folder outside it (a merged model beside its run, a `moslora.runsDirectory` elsewhere) opens
// in a new window; a file opens in the editor. Every result also offers its path.
import * as vscode from 'vscode';

/** Tells that `folder` was written, offering it. */
export async function offerFolder(message: string, folder: string): Promise<void> {
  const uri = vscode.Uri.file(folder);
  const inWorkspace = vscode.workspace.getWorkspaceFolder(uri) !== undefined;
  const action = inWorkspace ? 'Reveal in Explorer' : 'Open Folder';
  const choice = await vscode.window.showInformationMessage(message, action, 'Copy Path');
  if (choice === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', uri);
  if (choice === 'Open Folder') await vscode.commands.executeCommand('vscode.openFolder', uri, { forceNewWindow: true });
  if (choice === 'Copy Path') await vscode.env.clipboard.writeText(folder);
}

/** Tells that `file` was written, offering to open it (and to reveal it, inside the workspace). */
export async function offerFile(message: string, file: vscode.Uri): Promise<void> {
  const inWorkspace = vscode.workspace.getWorkspaceFolder(file) !== undefined;
  const choice = await vscode.window.showInformationMessage(message, 'Open', ...(inWorkspace ? ['Reveal in Explorer'] : []), 'Copy Path');
  if (choice === 'Open') await vscode.commands.executeCommand('vscode.open', file);
  if (choice === 'Reveal in Explorer') await vscode.commands.executeCommand('revealInExplorer', file);
  if (choice === 'Copy Path') await vscode.env.clipboard.writeText(file.fsPath);
}
