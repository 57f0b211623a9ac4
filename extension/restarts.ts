// How often a crashed server is restarted: at most `max` crashes within `windowMs`, as
// vscode-languageclient's own default ("crashed 5 times in the last 3 minutes"), then it stays
// down until the user restarts it.

export class RestartBudget {
  private crashes: number[] = [];

  constructor(
    readonly max = 5,
    readonly windowMs = 3 * 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** A crash happened: may the server be restarted? `count` is crashes within the window. */
  crashed(): { restart: boolean; count: number } {
    const t = this.now();
    this.crashes = this.crashes.filter((c) => t - c < this.windowMs);
    this.crashes.push(t);
    return { restart: this.crashes.length < this.max, count: this.crashes.length };
  }

  /** The user restarted the server by hand: start counting again. */
  reset(): void {
    this.crashes = [];
  }

  describeWindow(): string {
    const minutes = this.windowMs / 60_000;
    return Number.isInteger(minutes) ? `${minutes} minute${minutes === 1 ? '' : 's'}` : `${Math.round(this.windowMs / 1000)} seconds`;
  }
}
