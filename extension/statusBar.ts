// The status bar item for the current job: step/total, loss and ETA while it trains; queued and
// failed visibly (failures in the error colour until the next job). A click opens the panel.
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import { statusOf } from './jobs';
import { commandIds } from '../protocol/commands';

export class JobStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('moslora.job', vscode.StatusBarAlignment.Left, 10);
  private readonly subscription: vscode.Disposable;

  constructor(private readonly ctx: Ctx) {
    this.item.name = 'MoSLoRA Training';
    this.item.command = commandIds.openPanel;
    this.subscription = ctx.onJob(() => this.update());
    this.update();
  }

  update(): void {
    // "Stop Training" shows in the palette only while there is something to stop
    void vscode.commands.executeCommand('setContext', 'moslora.jobRunning', this.ctx.tracker.active().length > 0);
    const tracked = this.ctx.tracker.current();
    if (!tracked) {
      this.item.hide();
      return;
    }
    // the jobs waiting behind the one shown (a queued job shown is itself one of them)
    const queued = this.ctx.tracker.queued().filter((t) => t !== tracked).length;
    const view = statusOf(tracked, queued);
    this.item.text = view.text;
    this.item.tooltip = view.tooltip;
    this.item.backgroundColor =
      view.severity === 'error'
        ? new vscode.ThemeColor('statusBarItem.errorBackground')
        : view.severity === 'warning'
          ? new vscode.ThemeColor('statusBarItem.warningBackground')
          : undefined;
    this.item.show();
  }

  dispose(): void {
    this.subscription.dispose();
    this.item.dispose();
  }
}
