// Python's pickle, read without running it. A pickle is a program for a small stack machine
// (CPython's Lib/pickle.py and Lib/pickletools.py); loading one the usual way imports and calls
// whatever its GLOBAL and REDUCE opcodes name, which is how a pickle runs code. This reader runs
// nothing: opcodes build plain values (None, bools, ints, strings, tuples, dicts), a global is
// only its name, and the caller's rules say which names may appear, which may be called (REDUCE)
// and what a persistent id or a BUILD means. Anything else is refused with the opcode, its byte
// offset and the global it named.
//
// Only the opcodes a dict of tensors pickled with protocol 2 to 5 uses are read; the others
// (lists, floats, bytes, sets, INST/OBJ/NEWOBJ, extensions, protocol 0 and 1's text forms) are
// refused by name.

/** A tuple: kept apart from lists and dicts because the rules check argument tuples. */
export class PickleTuple {
  constructor(readonly items: readonly PickleValue[]) {}
}

/** A global (`module.name`) the rules allowed: a name, never anything imported. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}

  get qualifiedName(): string {
    return `${this.module}.${this.name}`;
  }
}

/** What a rule made (a tensor, a storage); opaque to the reader. */
export abstract class PickleObject {
  abstract readonly kind: string;
}

export type PickleDict = Map<string | number, PickleValue>;
export type PickleValue = null | boolean | number | string | PickleTuple | PickleGlobal | PickleDict | PickleObject;

/** What an allowed global may do: appear as a value, and with `call`, be REDUCE'd with a tuple of arguments. */
export interface PickleGlobalRule {
  call?: (args: readonly PickleValue[]) => PickleValue;
}

export interface PickleRules {
  /** The globals that may appear, by `module.name`. */
  globals: ReadonlyMap<string, PickleGlobalRule>;
  /** BINPERSID: what a persistent id stands for. Absent: persistent ids are refused. */
  persistentLoad?: (pid: PickleValue) => PickleValue;
  /** BUILD: applies `state` to `target`. Absent: BUILD is refused. */
  build?: (target: PickleValue, state: PickleValue) => void;
}

export class PickleError extends Error {
  constructor(
    readonly offset: number,
    readonly problem: string,
  ) {
    super(`at byte ${offset}: ${problem}`);
    this.name = 'PickleError';
  }
}

// Every opcode of protocols 0 to 5 (pickletools.opcodes), so a refusal can say which one it met.
const OPCODE_NAMES: Readonly<Record<number, string>> = {
  0x28: 'MARK', 0x2e: 'STOP', 0x30: 'POP', 0x31: 'POP_MARK', 0x32: 'DUP', 0x46: 'FLOAT', 0x49: 'INT', 0x4a: 'BININT',
  0x4b: 'BININT1', 0x4c: 'LONG', 0x4d: 'BININT2', 0x4e: 'NONE', 0x50: 'PERSID', 0x51: 'BINPERSID', 0x52: 'REDUCE',
  0x53: 'STRING', 0x54: 'BINSTRING', 0x55: 'SHORT_BINSTRING', 0x56: 'UNICODE', 0x58: 'BINUNICODE', 0x61: 'APPEND',
  0x62: 'BUILD', 0x63: 'GLOBAL', 0x64: 'DICT', 0x7d: 'EMPTY_DICT', 0x65: 'APPENDS', 0x67: 'GET', 0x68: 'BINGET',
  0x69: 'INST', 0x6a: 'LONG_BINGET', 0x6c: 'LIST', 0x5d: 'EMPTY_LIST', 0x6f: 'OBJ', 0x70: 'PUT', 0x71: 'BINPUT',
  0x72: 'LONG_BINPUT', 0x73: 'SETITEM', 0x74: 'TUPLE', 0x29: 'EMPTY_TUPLE', 0x75: 'SETITEMS', 0x47: 'BINFLOAT',
  0x80: 'PROTO', 0x81: 'NEWOBJ', 0x82: 'EXT1', 0x83: 'EXT2', 0x84: 'EXT4', 0x85: 'TUPLE1', 0x86: 'TUPLE2',
  0x87: 'TUPLE3', 0x88: 'NEWTRUE', 0x89: 'NEWFALSE', 0x8a: 'LONG1', 0x8b: 'LONG4', 0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES', 0x8c: 'SHORT_BINUNICODE', 0x8d: 'BINUNICODE8', 0x8e: 'BINBYTES8', 0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS', 0x91: 'FROZENSET', 0x92: 'NEWOBJ_EX', 0x93: 'STACK_GLOBAL', 0x94: 'MEMOIZE', 0x95: 'FRAME',
  0x96: 'BYTEARRAY8', 0x97: 'NEXT_BUFFER', 0x98: 'READONLY_BUFFER',
};

const HIGHEST_PROTOCOL = 5;

/** A short description of a value for an error message: its type, and a string's text. */
export function describePickleValue(value: PickleValue): string {
  if (value === null) return 'None';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof PickleTuple) return `a tuple of ${value.items.length}`;
  if (value instanceof PickleGlobal) return `the global ${value.qualifiedName}`;
  if (value instanceof Map) return `a dict of ${value.size}`;
  return `a ${value.kind}`;
}

class Reader {
  private position = 0;
  private readonly utf8 = new TextDecoder('utf-8', { fatal: true });

  constructor(private readonly bytes: Uint8Array) {}

  get offset(): number {
    return this.position;
  }

  get done(): boolean {
    return this.position >= this.bytes.length;
  }

  private take(count: number, what: string): Uint8Array {
    if (count > this.bytes.length - this.position) {
      throw new PickleError(this.position, `${what} needs ${count} bytes but the pickle ends ${this.bytes.length - this.position} bytes later: it is truncated`);
    }
    const out = this.bytes.subarray(this.position, this.position + count);
    this.position += count;
    return out;
  }

  byte(what: string): number {
    return this.take(1, what)[0]!;
  }

  /** Little-endian unsigned integer of 1, 2, 4 or 8 bytes. */
  unsigned(size: 1 | 2 | 4 | 8, what: string): number {
    const bytes = this.take(size, what);
    let value = 0;
    for (let i = size - 1; i >= 0; i--) value = value * 256 + bytes[i]!;
    if (!Number.isSafeInteger(value)) throw new PickleError(this.position - size, `${what} ${value} is too large`);
    return value;
  }

  int32(what: string): number {
    const bytes = this.take(4, what);
    return new DataView(bytes.buffer, bytes.byteOffset, 4).getInt32(0, true);
  }

  /** A two's complement little-endian integer of `size` bytes (LONG1), as a safe JS integer. */
  long(size: number, what: string): number {
    const bytes = this.take(size, what);
    let value = 0n;
    for (let i = size - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[i]!);
    if (size > 0 && bytes[size - 1]! & 0x80) value -= 1n << BigInt(8 * size);
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new PickleError(this.position - size, `${what} ${value} is beyond the integers this reader keeps exactly (±2^53)`);
    }
    return Number(value);
  }

  utf8String(size: number, what: string): string {
    const start = this.position;
    const bytes = this.take(size, what);
    try {
      return this.utf8.decode(bytes);
    } catch {
      throw new PickleError(start, `${what} is not valid UTF-8`);
    }
  }

  /** A newline-terminated line (GLOBAL's module and name). */
  line(what: string): string {
    const end = this.bytes.indexOf(0x0a, this.position);
    if (end < 0) throw new PickleError(this.position, `${what} has no end of line: the pickle is truncated`);
    const text = this.utf8String(end - this.position, what);
    this.position = end + 1;
    return text;
  }
}

/**
 * Reads the pickle in `bytes` and returns the object it builds, calling only the rules' functions.
 * Throws a PickleError naming the offset and the refused opcode or global.
 */
export function unpickle(bytes: Uint8Array, rules: PickleRules): PickleValue {
  const reader = new Reader(bytes);
  let stack: PickleValue[] = [];
  const marks: PickleValue[][] = [];
  const memo = new Map<number, PickleValue>();
  let at = 0;
  let opcode = 0;
  const name = () => OPCODE_NAMES[opcode] ?? `0x${opcode.toString(16).padStart(2, '0')}`;
  const fail = (problem: string): never => {
    throw new PickleError(at, `${name()}: ${problem}`);
  };
  const pop = (): PickleValue => (stack.length > 0 ? stack.pop()! : fail('the stack is empty'));
  const top = (): PickleValue => (stack.length > 0 ? stack[stack.length - 1]! : fail('the stack is empty'));
  const popMark = (): PickleValue[] => {
    const items = stack;
    stack = marks.pop() ?? fail('no MARK before it');
    return items;
  };
  const resolveGlobal = (module: string, qualname: string): PickleGlobal => {
    const full = `${module}.${qualname}`;
    if (!rules.globals.has(full)) {
      fail(`refused the global ${full}: only ${[...rules.globals.keys()].join(', ')} may appear here; nothing was imported or run`);
    }
    return new PickleGlobal(module, qualname);
  };
  const setItem = (dict: PickleValue, key: PickleValue, value: PickleValue) => {
    if (!(dict instanceof Map)) return fail(`sets an item on ${describePickleValue(dict)}, not on a dict`);
    if (typeof key !== 'string' && typeof key !== 'number') return fail(`a dict key must be a string or an int, got ${describePickleValue(key)}`);
    if (dict.has(key)) fail(`the key ${describePickleValue(key)} is set twice`);
    dict.set(key, value);
  };
  const memoize = (index: number) => memo.set(index, top());
  const recall = (index: number) => {
    if (!memo.has(index)) fail(`memo entry ${index} was never stored`);
    stack.push(memo.get(index)!);
  };

  while (!reader.done) {
    at = reader.offset;
    opcode = reader.byte('an opcode');
    switch (opcode) {
      case 0x80: {
        const version = reader.byte('the protocol version');
        if (version < 2 || version > HIGHEST_PROTOCOL) fail(`protocol ${version}: only protocols 2 to ${HIGHEST_PROTOCOL} are read`);
        break;
      }
      case 0x95: {
        const length = reader.unsigned(8, 'the frame length');
        if (length > bytes.length - reader.offset) fail(`a frame of ${length} bytes runs past the end of the pickle: it is truncated`);
        break;
      }
      case 0x2e: {
        if (marks.length > 0) fail(`${marks.length} MARK(s) left open`);
        if (stack.length !== 1) fail(`expected one object on the stack, found ${stack.length}`);
        if (!reader.done) fail(`${bytes.length - reader.offset} bytes follow the end of the pickle`);
        return stack[0]!;
      }
      case 0x28:
        marks.push(stack);
        stack = [];
        break;
      case 0x71:
        memoize(reader.unsigned(1, 'the memo index'));
        break;
      case 0x72:
        memoize(reader.unsigned(4, 'the memo index'));
        break;
      case 0x94:
        memoize(memo.size);
        break;
      case 0x68:
        recall(reader.unsigned(1, 'the memo index'));
        break;
      case 0x6a:
        recall(reader.unsigned(4, 'the memo index'));
        break;
      case 0x4e:
        stack.push(null);
        break;
      case 0x88:
        stack.push(true);
        break;
      case 0x89:
        stack.push(false);
        break;
      case 0x4a:
        stack.push(reader.int32('the int'));
        break;
      case 0x4b:
        stack.push(reader.unsigned(1, 'the int'));
        break;
      case 0x4d:
        stack.push(reader.unsigned(2, 'the int'));
        break;
      case 0x8a:
        stack.push(reader.long(reader.unsigned(1, 'the length of the int'), 'the int'));
        break;
      case 0x58:
        stack.push(reader.utf8String(reader.unsigned(4, 'the length of the string'), 'the string'));
        break;
      case 0x8c:
        stack.push(reader.utf8String(reader.unsigned(1, 'the length of the string'), 'the string'));
        break;
      case 0x29:
        stack.push(new PickleTuple([]));
        break;
      case 0x74: {
        const items = popMark(); // before `stack.push`, which would otherwise bind the inner stack
        stack.push(new PickleTuple(items));
        break;
      }
      case 0x85:
      case 0x86:
      case 0x87: {
        const count = opcode - 0x84;
        if (stack.length < count) fail(`needs ${count} values on the stack, found ${stack.length}`);
        stack.push(new PickleTuple(stack.splice(stack.length - count, count)));
        break;
      }
      case 0x7d:
        stack.push(new Map());
        break;
      case 0x73: {
        const value = pop();
        const key = pop();
        setItem(top(), key, value);
        break;
      }
      case 0x75: {
        const items = popMark();
        if (items.length % 2 !== 0) fail(`${items.length} values after the MARK: not key-value pairs`);
        const dict = top();
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i]!, items[i + 1]!);
        break;
      }
      case 0x63: {
        const module = reader.line('the module name');
        stack.push(resolveGlobal(module, reader.line('the global name')));
        break;
      }
      case 0x93: {
        const qualname = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof qualname !== 'string') {
          fail(`the module and name must be strings, got ${describePickleValue(module)} and ${describePickleValue(qualname)}`);
        }
        stack.push(resolveGlobal(module as string, qualname as string));
        break;
      }
      case 0x52: {
        const args = pop();
        const callable = pop();
        if (!(callable instanceof PickleGlobal)) return fail(`calls ${describePickleValue(callable)}, which is not an allowed global`);
        const call = rules.globals.get(callable.qualifiedName)?.call ?? fail(`${callable.qualifiedName} may appear here but not be called`);
        if (!(args instanceof PickleTuple)) return fail(`the arguments of ${callable.qualifiedName} must be a tuple, got ${describePickleValue(args)}`);
        try {
          stack.push(call(args.items));
        } catch (error) {
          fail(`${callable.qualifiedName}: ${(error as Error).message}`);
        }
        break;
      }
      case 0x62: {
        const state = pop();
        const build = rules.build ?? fail('setting the state of an object is not allowed here');
        try {
          build(top(), state);
        } catch (error) {
          fail((error as Error).message);
        }
        break;
      }
      case 0x51: {
        const pid = pop();
        const load = rules.persistentLoad ?? fail('persistent ids are not allowed here');
        try {
          stack.push(load(pid));
        } catch (error) {
          fail((error as Error).message);
        }
        break;
      }
      default:
        fail('not read here: a state dict of tensors does not need this opcode');
    }
  }
  throw new PickleError(reader.offset, 'the pickle ends without STOP: it is truncated');
}
