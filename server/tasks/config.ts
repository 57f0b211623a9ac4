// A config as the editor's tasks load it (Estimate, Train): the text open in the editor, else the
// file; a config that does not validate is refused in one line, its first problem and how many more.
import { ConfigError, formatIssue, loadConfigFile, parseConfigText, resolveConfigPaths, type ResolvedConfig } from '../config/load';

/** `text`: the config as open in the editor (unsaved edits count); else the file is read. */
export async function loadTaskConfig(configPath: string, text?: string): Promise<ResolvedConfig> {
  try {
    return text === undefined ? await loadConfigFile(configPath) : fromText(configPath, text);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    const [first, ...rest] = error.issues;
    throw new Error(`${formatIssue(configPath, first!)}${rest.length ? ` (and ${rest.length} more; the Problems panel lists them)` : ''}`);
  }
}

function fromText(configPath: string, text: string): ResolvedConfig {
  const { config, issues } = parseConfigText(text, configPath);
  if (!config) throw new ConfigError(configPath, issues.filter((issue) => issue.severity === 'error'));
  return resolveConfigPaths(config, configPath);
}
