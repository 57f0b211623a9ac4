// What a command prints with --json: ONE JSON object as its last stdout line. The commands the
// language server runs print the shapes protocol/cli.ts declares, which the server reads back.
import type { CliCommand, CliResults } from '../../protocol/cli';

export function printJson(value: object): void {
  console.log(JSON.stringify(value));
}

/** The `--json` result of a command the language server runs (server/tasks/cli-task.ts). */
export function printResult<K extends CliCommand>(_command: K, result: CliResults[K]): void {
  printJson(result);
}
