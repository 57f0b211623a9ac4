// The pickle reader runs nothing: every way a pickle runs code (a global called by REDUCE, INST,
// OBJ, BUILD on an object) is refused by name, and malformed input ends in an error with its
// offset, never in a hang.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PickleError, PickleGlobal, PickleTuple, unpickle, type PickleRules, type PickleValue } from '../../server/formats/pickle';
import { global, int, OP, pickle, str } from '../helpers/torch-files';

const rules: PickleRules = {
  globals: new Map([
    ['collections.OrderedDict', { call: (args: readonly PickleValue[]) => (args.length === 0 ? new Map() : new PickleTuple(args)) }],
    ['torch.FloatStorage', {}],
  ]),
};

describe('unpickle', () => {
  it('builds dicts, tuples, strings, ints, bools and None, with memo references', () => {
    const value = unpickle(
      pickle(OP.PROTO, 2, OP.EMPTY_DICT, OP.MARK, str('a'), int(300), OP.BINPUT, 0, str('b'), OP.MARK, OP.NONE, OP.NEWFALSE, OP.BINGET, 0, OP.TUPLE, OP.SETITEMS, OP.STOP),
      rules,
    );
    assert.ok(value instanceof Map);
    assert.equal(value.get('a'), 300);
    assert.deepEqual((value.get('b') as PickleTuple).items, [null, false, 300]);
  });

  it('calls only allowed globals, and those only through the rules', () => {
    const made = unpickle(pickle(OP.PROTO, 2, global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP), rules);
    assert.ok(made instanceof Map && made.size === 0);
    assert.ok(unpickle(pickle(OP.PROTO, 2, global('torch', 'FloatStorage'), OP.STOP), rules) instanceof PickleGlobal);
  });

  it('refuses os.system, builtins.eval (by STACK_GLOBAL) and any other global, naming it', () => {
    assert.throws(
      () => unpickle(pickle(OP.PROTO, 2, global('os', 'system'), str('touch /tmp/pwned'), OP.TUPLE1, OP.REDUCE, OP.STOP), rules),
      /at byte 2: GLOBAL: refused the global os\.system: only collections\.OrderedDict, torch\.FloatStorage may appear here; nothing was imported or run/,
    );
    assert.throws(
      () => unpickle(pickle(OP.PROTO, 4, str('builtins'), str('eval'), OP.STACK_GLOBAL, str('1+1'), OP.TUPLE1, OP.REDUCE, OP.STOP), rules),
      /STACK_GLOBAL: refused the global builtins\.eval/,
    );
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, global('torch._utils', '_rebuild_parameter'), OP.STOP), rules), /refused the global torch\._utils\._rebuild_parameter/);
  });

  it('refuses REDUCE of anything but an allowed callable, and INST, and BUILD without a rule', () => {
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, global('torch', 'FloatStorage'), OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP), rules), /REDUCE: torch\.FloatStorage may appear here but not be called/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, str('print'), OP.EMPTY_TUPLE, OP.REDUCE, OP.STOP), rules), /REDUCE: calls "print", which is not an allowed global/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.MARK, OP.INST, Buffer.from('os\nsystem\n'), OP.STOP), rules), /at byte 3: INST: not read here/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.EMPTY_DICT, OP.EMPTY_DICT, OP.BUILD, OP.STOP), rules), /BUILD: setting the state of an object is not allowed here/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, str('x'), OP.BINPERSID, OP.STOP), rules), /BINPERSID: persistent ids are not allowed here/);
  });

  it('ends malformed input in an error with its offset, never in a loop', () => {
    // A negative BINBYTES length sends a reader that trusts it backwards forever.
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.BINBYTES, 0xfb, 0xff, 0xff, 0xff, OP.STOP), rules), /at byte 2: BINBYTES: not read here/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.BINUNICODE, 0xff, 0xff, 0xff, 0x7f, 0x41), rules), /at byte 7: the string needs 2147483647 bytes but the pickle ends 1 bytes later: it is truncated/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.EMPTY_DICT), rules), /the pickle ends without STOP: it is truncated/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.TUPLE, OP.STOP), rules), /TUPLE: no MARK before it/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.BINGET, 7, OP.STOP), rules), /BINGET: memo entry 7 was never stored/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.SETITEM, OP.STOP), rules), /SETITEM: the stack is empty/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.NONE, OP.NONE, OP.STOP), rules), /STOP: expected one object on the stack, found 2/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.NONE, OP.STOP, OP.NONE), rules), /STOP: 1 bytes follow the end of the pickle/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 9, OP.NONE, OP.STOP), rules), /PROTO: protocol 9: only protocols 2 to 5 are read/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.EMPTY_DICT, str('k'), OP.NONE, OP.SETITEM, str('k'), OP.NONE, OP.SETITEM, OP.STOP), rules), /SETITEM: the key "k" is set twice/);
    assert.throws(() => unpickle(pickle(OP.PROTO, 2, OP.BINUNICODE, 1, 0, 0, 0, 0xff, OP.STOP), rules), PickleError);
  });
});
