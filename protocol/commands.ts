// The editor's palette commands by id: package.json contributes each, the extension registers
// each (extension/commands.ts), and the server's code lenses name four of them. Nothing else
// spells a command id. From the palette no command takes an argument; the lenses pass one.
export const commandIds = {
  newConfig: 'moslora.newConfig',
  /** Start a training job; a lens passes the config's URI. */
  startTraining: 'moslora.startTraining',
  stopTraining: 'moslora.stopTraining',
  /** The training panel; a lens passes the run folder to focus. */
  openPanel: 'moslora.openPanel',
  compareRuns: 'moslora.compareRuns',
  showMixers: 'moslora.showMixers',
  /** Merge an adapter into its base model; a lens passes the adapter folder. */
  mergeAdapter: 'moslora.mergeAdapter',
  exportAdapter: 'moslora.exportAdapter',
  tryAdapter: 'moslora.tryAdapter',
  /** Trainable parameters, memory and time per step of a config; a lens passes the config's URI. */
  estimate: 'moslora.estimate',
  selectBackend: 'moslora.selectBackend',
  showEnvironment: 'moslora.showEnvironment',
  showServerLog: 'moslora.showServerLog',
  restartServer: 'moslora.restartServer',
} as const;

export type CommandName = keyof typeof commandIds;
export type CommandId = (typeof commandIds)[CommandName];
