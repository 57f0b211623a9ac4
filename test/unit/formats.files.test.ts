// Reading a user's files (server/formats/files.ts): the first invalid UTF-8 byte, checked against
// a fatal TextDecoder on random bytes, and where in a JSON text the parser stopped.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import seedrandom from 'seedrandom';
import { firstInvalidUtf8, jsonErrorPlace, readTextFile } from '../../server/formats/files';

const valid = (bytes: Uint8Array) => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
};

describe('UTF-8 checks', () => {
  it('names the first byte of an ill-formed sequence: overlong, surrogate, past U+10FFFF, truncated, stray continuation', () => {
    const at = (...bytes: number[]) => firstInvalidUtf8(Uint8Array.from(bytes));
    assert.equal(at(0x61, 0xc3, 0xa9), -1);
    assert.equal(at(0x61, 0xc0, 0xaf), 1, 'overlong /');
    assert.equal(at(0x61, 0x62, 0xed, 0xa0, 0x80), 2, 'a UTF-16 surrogate');
    assert.equal(at(0xf4, 0x90, 0x80, 0x80), 0, 'past U+10FFFF');
    assert.equal(at(0x61, 0xe2, 0x82), 1, 'cut off');
    assert.equal(at(0x80), 0, 'a continuation byte alone');
    assert.equal(at(0xf0, 0x9f, 0x98, 0x80, 0xff), 4);
  });

  it('agrees with a fatal TextDecoder on random bytes', () => {
    const random = seedrandom('utf8');
    for (let n = 0; n < 3000; n++) {
      const bytes = Uint8Array.from({ length: 1 + Math.floor(random() * 8) }, () => (random() < 0.5 ? 0x80 + Math.floor(random() * 0x80) : Math.floor(random() * 256)));
      const bad = firstInvalidUtf8(bytes);
      assert.equal(bad === -1, valid(bytes), `${Buffer.from(bytes).toString('hex')}`);
      if (bad >= 0) assert.ok(valid(bytes.subarray(0, bad)), `the bytes before ${bad} of ${Buffer.from(bytes).toString('hex')} are UTF-8`);
    }
  });
});

describe('jsonErrorPlace', () => {
  const place = (text: string) => {
    try {
      JSON.parse(text);
    } catch (error) {
      return jsonErrorPlace(text, error);
    }
    throw new Error(`${text} parsed`);
  };

  it('gives the line and column where JSON.parse stopped, 1-based', () => {
    assert.equal(place('{"a": x}'), ':1:7');
    assert.equal(place('{\n  "a": 1,\n  "b" 2\n}'), ':3:7');
    assert.equal(place('[1,\n\n\n]'), ':4:1');
  });

  it('gives the end of a text cut short, and nothing for one nested deeper than the parser reaches', () => {
    assert.equal(place('{\n"a": '), ':2:6');
    assert.equal(place(''), ':1:1');
    assert.equal(place(`${'['.repeat(100_000)}x`), '');
  });
});

describe('reading a file a user names', () => {
  it('refuses a path that holds a NUL byte, showing it as \\0 (Node\'s message repeated the path with the byte itself)', async () => {
    await assert.rejects(readTextFile('/tmp/data\0\0.jsonl', 'the dataset', 1024), {
      message: '/tmp/data\\0\\0.jsonl: cannot read the dataset: the path holds a NUL byte (shown as \\0), which no file name can; fix the path',
    });
  });
});
