// target_modules written as one string: a regular expression that must match a whole module
// name, as PEFT applies it (re.fullmatch). It is matched by RE2 (re2js), in time linear in the
// name's length whatever the pattern, never by a backtracking engine: '(.*.*)*y' costs what any
// other pattern does. The schema's check, the editor's diagnostics and the engine's selection
// all compile here, so a pattern is accepted or refused the same way everywhere.
import { RE2JS, RE2JSException } from 're2js';

/** Longer than any module-name pattern needs (a layer range and a few names fit in 100). */
export const MAX_PATTERN_LENGTH = 256;
/**
 * RE2's program size (its instructions): a few hundred for a real pattern. Counted repetitions
 * multiply it ('.{1000}' is 1,000 instructions), and compiling and matching cost grow with it.
 */
export const MAX_PATTERN_PROGRAM = 5_000;

export type CompiledPattern = { ok: true; matches: (name: string) => boolean } | { ok: false; problem: string };

/** Syntax of JavaScript's or Python's engines that RE2 lacks, as RE2 words the refusal. */
const UNSUPPORTED: { test: RegExp; what: string }[] = [
  { test: /`\\[1-9]/, what: 'backreferences (\\1) are not supported' },
  { test: /`\(\?<?[=!]|invalid named capture: `\(\?<[=!]/, what: 'lookahead and lookbehind ((?=…), (?!…), (?<=…), (?<!…)) are not supported' },
  { test: /`\(\?>/, what: 'atomic groups ((?>…)) are not supported' },
  { test: /nested repetition operator: `[*+?]\+/, what: 'possessive quantifiers (*+, ++, ?+) are not supported' },
  { test: /`\\Z/, what: '\\Z is not supported (a pattern matches the whole name anyway)' },
];

const RE2_SYNTAX = 'patterns are matched by RE2, in linear time, which has none';

function compile(pattern: string): CompiledPattern {
  if (pattern.length > MAX_PATTERN_LENGTH) {
    return { ok: false, problem: `the pattern is ${pattern.length} characters, more than ${MAX_PATTERN_LENGTH}; list the modules instead, or shorten it` };
  }
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(pattern);
  } catch (error) {
    if (!(error instanceof RE2JSException)) throw error;
    const message = error.message.replace(/^error parsing regexp: /, '');
    const unsupported = UNSUPPORTED.find(({ test }) => test.test(message));
    return { ok: false, problem: unsupported ? `${unsupported.what}: ${RE2_SYNTAX}` : `not a valid regular expression: ${message}` };
  }
  const size = compiled.programSize();
  if (size > MAX_PATTERN_PROGRAM) {
    return {
      ok: false,
      problem: `the pattern compiles to ${size.toLocaleString('en-US')} RE2 instructions, more than ${MAX_PATTERN_PROGRAM.toLocaleString('en-US')}; counted repetitions such as {1000} multiply it, and a module name needs none that large`,
    };
  }
  return { ok: true, matches: (name) => compiled.matches(name) };
}

/** Compiled patterns by text, the most recent last: the editor checks the same few again and again. */
const cache = new Map<string, CompiledPattern>();
const CACHED = 64;

/** The pattern compiled, or why it is refused (one line, without the key: callers name it). */
export function compileTargetPattern(pattern: string): CompiledPattern {
  let compiled = cache.get(pattern);
  if (compiled) {
    cache.delete(pattern);
  } else {
    compiled = compile(pattern);
    if (cache.size >= CACHED) cache.delete(cache.keys().next().value!);
  }
  cache.set(pattern, compiled);
  return compiled;
}

/** Why a target_modules pattern is refused; null when it compiles. */
export function targetPatternProblem(pattern: string): string | null {
  const compiled = compileTargetPattern(pattern);
  return compiled.ok ? null : compiled.problem;
}
