// A value from a user's file as an error message quotes it: short, and never by recursing into
// it (JSON.stringify overflows the stack on a value nested some thousands deep, which JSON.parse
// reads without trouble).

/** `value` as JSON, cut to `max` characters; a value nested too deeply to print is described instead. */
export function preview(value: unknown, max = 60): string {
  if (value === undefined) return 'nothing';
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    const kind = Array.isArray(value) ? 'a list' : 'an object';
    // RangeError: the stack ran out; otherwise a cycle (a YAML alias inside itself) or a BigInt
    return error instanceof RangeError ? `${kind} nested too deeply to show` : `${kind} that cannot be written as JSON`;
  }
  if (json === undefined) return String(value);
  return json.length > max ? `${json.slice(0, max - 3)}...` : json;
}

/** A value's kind, for a message that must not quote it (a tokenizer's vocabulary, a dataset's records). */
export function kindOf(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
