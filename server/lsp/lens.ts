// Code lenses at the top of a config: "Train" and "Estimate". The extension implements the
// commands; their ids live in the protocol file, and their one argument is the config's URI.
import type { CodeLens } from 'vscode-languageserver';
import { configCommands } from '../protocol';

export function configLenses(uri: string): CodeLens[] {
  const range = { start: { line: 0, character: 0 }, end: { line: 0, character: 0 } };
  return [
    { range, command: { title: '$(play) Train', command: configCommands.startTraining, arguments: [uri] } },
    { range, command: { title: 'Estimate', command: configCommands.estimate, arguments: [uri] } },
  ];
}
