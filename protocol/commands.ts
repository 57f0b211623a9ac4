// The editor's palette commands by id: package.json contributes each, the extension registers
// each (extension/commands.ts), and the server's code lenses name five of them. Nothing else
// spells a command id. From the palette no command takes an argument; the lenses pass one.
export const commandIds = {
  newConfig: 'moslora.newConfig',
  /** Start a training job; a lens passes the config's URI. */
  startTraining: 'moslora.startTraining',
  /** A job's key stops that job (the panel, a queued job's notification). */
  stopTraining: 'moslora.stopTraining',
  /** Continue a stopped or failed run from its newest checkpoint; a lens (and the panel) pass the run folder. */
  resumeTraining: 'moslora.resumeTraining',
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
  /** Train a config once per method and seed and report the paired differences; a menu passes the config's URI. */
  abTest: 'moslora.abTest',
  selectBackend: 'moslora.selectBackend',
  showEnvironment: 'moslora.showEnvironment',
  showServerLog: 'moslora.showServerLog',
  restartServer: 'moslora.restartServer',
} as const;

export type CommandName = keyof typeof commandIds;
export type CommandId = (typeof commandIds)[CommandName];

/**
 * Commands as the palette lists them ("category: title" in package.json), for text that tells
 * the user what to run (the panel's empty states). A unit test holds them equal to package.json.
 */
export const paletteTitles = {
  startTraining: 'MoSLoRA: Start Training',
} as const satisfies Partial<Record<CommandName, string>>;
