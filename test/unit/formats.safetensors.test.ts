// The safetensors reader and writer (server/formats/safetensors.ts): the reference layout byte for
// byte, F16 and BF16 rounding over every bit pattern, header validation with the exact problem, and
// lazy reads of a sparse 32 GiB file.
import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { mkdir, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  SafetensorsError,
  SafetensorsFile,
  writeSafetensors,
  type TensorToWrite,
  type WritableDtype,
} from '../../server/formats/safetensors';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'safetensors-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 8-byte little-endian length, the header text (or raw bytes), then `data` (or that many zero bytes). */
function fileBytes(header: string | Uint8Array, data: Uint8Array | number = 0, declaredLength?: bigint): Buffer {
  const headerBytes = typeof header === 'string' ? Buffer.from(header, 'utf8') : Buffer.from(header);
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(declaredLength ?? BigInt(headerBytes.length));
  return Buffer.concat([prefix, headerBytes, typeof data === 'number' ? Buffer.alloc(data) : data]);
}

async function rejectsWith(promise: Promise<unknown>, path: string, ...fragments: string[]): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof SafetensorsError, `expected SafetensorsError, got ${String(error)}`);
    assert.ok(error.message.startsWith(`${path}: `), `message does not start with the path: ${error.message}`);
    for (const fragment of fragments) assert.ok(error.message.includes(fragment), `"${error.message}" lacks "${fragment}"`);
    return true;
  });
}

async function roundTrip(dtype: WritableDtype, values: readonly number[]): Promise<{ raw: Buffer; read: Float32Array }> {
  const path = join(dir, `${dtype}.safetensors`);
  await writeSafetensors(path, [{ name: 'x', dtype, shape: [values.length], data: new Float32Array(values) }]);
  const file = await SafetensorsFile.open(path);
  try {
    const { offset, byteLength } = file.info('x');
    const raw = (await readFile(path)).subarray(offset, offset + byteLength);
    return { raw, read: await file.readFloat32('x') };
  } finally {
    await file.close();
  }
}

function hex(bits: number, digits: number): string {
  return `0x${bits.toString(16).padStart(digits, '0')}`;
}

function halves(raw: Buffer): string[] {
  return Array.from({ length: raw.length / 2 }, (_, i) => hex(raw.readUInt16LE(2 * i), 4));
}

/** Same value, -0 and NaN included. */
function assertSameFloats(actual: Float32Array, expected: readonly number[]): void {
  assert.equal(actual.length, expected.length);
  expected.forEach((value, i) => assert.ok(Object.is(actual[i], Math.fround(value)), `[${i}]: ${actual[i]} is not ${value}`));
}

const MAX_F32 = 3.4028234663852886e38;

describe('writeSafetensors', () => {
  it('writes the layout of the reference implementation byte for byte, header padded with spaces to a multiple of 8', async () => {
    const path = join(dir, 'a.safetensors');
    const data = new Float32Array([0, 1, 2, 3, 4, 5]);
    await writeSafetensors(path, [{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data }]);
    const header = '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}';
    assert.equal(header.length, 64);
    assert.deepEqual(await readFile(path), fileBytes(header, new Uint8Array(data.buffer)));

    await writeSafetensors(path, [{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data }]);
    const unpadded = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
    assert.equal(unpadded.length, 65);
    assert.deepEqual(await readFile(path), fileBytes(`${unpadded}       `, new Uint8Array(data.buffer)));
  });

  it('lays tensors out by dtype size, then name, so that every tensor is aligned to its element size', async () => {
    const path = join(dir, 'mixed.safetensors');
    const tensor = (name: string, dtype: WritableDtype, length: number): TensorToWrite => ({
      name,
      dtype,
      shape: [length],
      data: new Float32Array(length).fill(1),
    });
    await writeSafetensors(path, [tensor('b', 'F16', 3), tensor('z', 'F32', 1), tensor('a', 'F16', 1), tensor('m', 'BF16', 1), tensor('c', 'F32', 2)]);
    const file = await SafetensorsFile.open(path);
    try {
      const layout = [...file.tensors].map(([name, { dtype, offset }]) => `${name} ${dtype} ${offset - file.info('c').offset}`);
      assert.deepEqual(layout, ['c F32 0', 'z F32 8', 'm BF16 12', 'a F16 14', 'b F16 16']);
      assert.equal(file.info('c').offset % 8, 0);
    } finally {
      await file.close();
    }
  });

  it('round-trips F32 bit for bit: ±0, ±Inf, NaN, the smallest subnormal and the largest finite value', async () => {
    const values = [0, -0, 1, -1.5, Infinity, -Infinity, NaN, 2 ** -149, MAX_F32, 0.1];
    const { raw, read } = await roundTrip('F32', values);
    const words = Array.from({ length: values.length }, (_, i) => hex(raw.readUInt32LE(4 * i), 8));
    assert.deepEqual(words, [
      '0x00000000', '0x80000000', '0x3f800000', '0xbfc00000', '0x7f800000',
      '0xff800000', '0x7fc00000', '0x00000001', '0x7f7fffff', '0x3dcccccd',
    ]);
    assertSameFloats(read, values);
  });

  it('encodes F16 with round-to-nearest-even, keeping NaN, ±Inf, −0 and subnormals', async () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [0.1, 0x2e66], // 0x3dcccccd: the 13 dropped bits are 0x0ccd < half, rounds down
      [65504, 0x7bff], // largest finite half
      [65519, 0x7bff], // below the midpoint to 65536
      [65520, 0x7c00], // the midpoint: ties to the even neighbour, 65536, which is Inf
      [1e6, 0x7c00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [NaN, 0x7e00],
      [1 + 2 ** -11, 0x3c00], // tie between 0x3c00 and 0x3c01: even
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 0x3c01 and 0x3c02: even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [2 ** -14, 0x0400], // smallest normal
      [1023.5 * 2 ** -24, 0x0400], // tie between the largest subnormal 0x03ff and 0x0400: even
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [2 ** -24, 0x0001], // smallest subnormal
      [3 * 2 ** -25, 0x0002], // tie between 0x0001 and 0x0002: even
      [2 ** -25, 0x0000], // tie between 0 and 0x0001: even
      [2 ** -25 * (1 + 2 ** -23), 0x0001], // just above that tie
      [-(2 ** -25) * (1 + 2 ** -23), 0x8001],
      [2 ** -26, 0x0000],
      [2 ** -149, 0x0000],
    ];
    const { raw, read } = await roundTrip('F16', cases.map(([value]) => value));
    assert.deepEqual(halves(raw), cases.map(([, bits]) => hex(bits, 4)));
    const decoded = [0, -0, 1, -2, 0.0999755859375, 65504, 65504, Infinity, Infinity, Infinity, -Infinity, NaN, 1, 1 + 2 ** -9, 1 + 2 ** -10];
    assertSameFloats(read.subarray(0, decoded.length), decoded);
    assertSameFloats(read.subarray(decoded.length), [2 ** -14, 2 ** -14, 1023 * 2 ** -24, 2 ** -24, 2 ** -23, 0, 2 ** -24, -(2 ** -24), 0, 0]);
  });

  it('encodes BF16 with round-to-nearest-even, keeping NaN, ±Inf, −0 and float32 subnormals', async () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3f80],
      [-2, 0xc000],
      [0.1, 0x3dcd], // 0x3dcccccd: the dropped 0xcccd > 0x8000, rounds up
      [Infinity, 0x7f80],
      [-Infinity, 0xff80],
      [NaN, 0x7fc0],
      [1 + 2 ** -7, 0x3f81], // exact
      [1 + 2 ** -8, 0x3f80], // tie between 0x3f80 and 0x3f81: even
      [1 + 3 * 2 ** -8, 0x3f82], // tie between 0x3f81 and 0x3f82: even
      [1 + 2 ** -8 + 2 ** -20, 0x3f81], // just above the tie
      [MAX_F32, 0x7f80], // beyond the midpoint to 2^128: Inf
      [2 ** -133, 0x0001], // float32 subnormal that bfloat16 holds exactly
      [2 ** -149, 0x0000],
    ];
    const { raw, read } = await roundTrip('BF16', cases.map(([value]) => value));
    assert.deepEqual(halves(raw), cases.map(([, bits]) => hex(bits, 4)));
    assertSameFloats(read, [0, -0, 1, -2, 0.10009765625, Infinity, -Infinity, NaN, 1 + 2 ** -7, 1, 1 + 2 ** -6, 1 + 2 ** -7, Infinity, 2 ** -133, 0]);
  });

  it('decodes every F16 and BF16 bit pattern to its value and encodes it back to the same bits', async () => {
    const all = new Uint8Array(65536 * 2);
    for (let bits = 0; bits < 65536; bits++) new DataView(all.buffer).setUint16(2 * bits, bits, true);
    for (const dtype of ['F16', 'BF16'] as const) {
      const source = join(dir, `all-${dtype}.safetensors`);
      await writeFile(source, fileBytes(`{"all":{"dtype":"${dtype}","shape":[65536],"data_offsets":[0,131072]}}`, all));
      const file = await SafetensorsFile.open(source);
      const values = await file.readFloat32('all');
      await file.close();
      for (let bits = 0; bits < 65536; bits++) {
        const sign = bits & 0x8000 ? -1 : 1;
        const expected =
          dtype === 'BF16'
            ? new Float32Array(new Uint32Array([bits << 16]).buffer)[0]!
            : ((exponent: number, mantissa: number) =>
                exponent === 0x1f
                  ? mantissa === 0 ? sign * Infinity : NaN
                  : exponent === 0 ? sign * mantissa * 2 ** -24 : sign * (1 + mantissa / 1024) * 2 ** (exponent - 15))(
                (bits >> 10) & 0x1f,
                bits & 0x3ff,
              );
        assert.ok(Object.is(values[bits], expected), `${dtype} ${hex(bits, 4)} decoded to ${values[bits]}, expected ${expected}`);
      }
      const copy = join(dir, `copy-${dtype}.safetensors`);
      await writeSafetensors(copy, [{ name: 'all', dtype, shape: [65536], data: values }]);
      const written = (await readFile(copy)).subarray(-all.length);
      for (let bits = 0; bits < 65536; bits++) {
        const isNaN = dtype === 'F16' ? (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0 : (bits & 0x7f80) === 0x7f80 && (bits & 0x7f) !== 0;
        const quietBit = dtype === 'F16' ? 0x200 : 0x40;
        assert.equal(hex(written.readUInt16LE(2 * bits), 4), hex(isNaN ? bits | quietBit : bits, 4), `${dtype} ${hex(bits, 4)}`);
      }
    }
  });

  it('round-trips metadata, keys in a fixed order, and reads a file without metadata as {}', async () => {
    const path = join(dir, 'meta.safetensors');
    const metadata = { format: 'pt', '0': 'digit key', 'ünïcode': 'välue "quoted"' };
    await writeSafetensors(path, [{ name: 'w', dtype: 'F32', shape: [0], data: new Float32Array(0) }], metadata);
    const file = await SafetensorsFile.open(path);
    assert.deepEqual(file.metadata, metadata);
    assert.deepEqual([...file.tensors.keys()], ['w']);
    assert.deepEqual(await file.readFloat32('w'), new Float32Array(0));
    await file.close();
    const header = (await readFile(path)).toString('utf8', 8);
    assert.ok(header.startsWith('{"__metadata__":{"0":"digit key","format":"pt","ünïcode":"välue \\"quoted\\""},"w":'), header);

    await writeSafetensors(path, []);
    const empty = await SafetensorsFile.open(path);
    assert.deepEqual(empty.metadata, {});
    assert.equal(empty.tensors.size, 0);
    await empty.close();
    assert.deepEqual(await readFile(path), fileBytes('{}      '));
  });

  it('rejects a shape that does not match the data, naming the tensor, and leaves nothing behind', async () => {
    const path = join(dir, 'bad.safetensors');
    const good: TensorToWrite = { name: 'ok', dtype: 'F32', shape: [2], data: new Float32Array(2) };
    const bad: TensorToWrite = { name: 'model.layers.0.mlp.up_proj.weight', dtype: 'F16', shape: [2, 3], data: new Float32Array(5) };
    await rejectsWith(writeSafetensors(path, [good, bad]), path, 'tensor "model.layers.0.mlp.up_proj.weight": shape [2, 3] holds 6 values but data has 5');
    await rejectsWith(writeSafetensors(path, [good, good]), path, 'tensor "ok": given twice');
    await rejectsWith(writeSafetensors(path, [{ ...good, name: '__metadata__' }]), path, '"__metadata__" is reserved');
    await rejectsWith(writeSafetensors(path, [{ ...good, shape: [-2] }]), path, 'tensor "ok": shape [-2] must hold non-negative integers');
    await rejectsWith(writeSafetensors(path, [{ ...good, dtype: 'I32' as WritableDtype }]), path, 'tensor "ok": cannot write dtype "I32"');
    await rejectsWith(writeSafetensors(path, [good], { step: 3 as unknown as string }), path, 'metadata "step" must be a string, got 3');
    assert.deepEqual(await readdir(dir), []);
  });

  it('replaces an existing file whole, and removes its temporary file when the write fails', async () => {
    const path = join(dir, 'w.safetensors');
    await writeSafetensors(path, [{ name: 'old', dtype: 'F32', shape: [1], data: new Float32Array([1]) }]);
    await writeSafetensors(path, [{ name: 'new', dtype: 'F32', shape: [1], data: new Float32Array([2]) }]);
    const file = await SafetensorsFile.open(path);
    assert.deepEqual([...file.tensors.keys()], ['new']);
    await file.close();
    assert.deepEqual(await readdir(dir), ['w.safetensors']);

    const occupied = join(dir, 'occupied');
    await mkdir(occupied);
    await rejectsWith(writeSafetensors(occupied, [{ name: 'x', dtype: 'F32', shape: [1], data: new Float32Array(1) }]), occupied, 'writing failed');
    assert.deepEqual((await readdir(dir)).sort(), ['occupied', 'w.safetensors']);
  });
});

describe('SafetensorsFile.open: header validation', () => {
  const entry = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });
  const json = (header: unknown) => JSON.stringify(header);
  const cases: { what: string; bytes: Buffer; problem: string }[] = [
    { what: 'an empty file', bytes: Buffer.alloc(0), problem: 'the file is 0 bytes, too short for the 8-byte header length' },
    { what: 'a header length of 2^64 − 1', bytes: fileBytes('{}', 0, 2n ** 64n - 1n), problem: 'header length 18446744073709551615 exceeds the 100000000-byte limit' },
    { what: 'a header length one over the limit', bytes: fileBytes('{}', 0, 100_000_001n), problem: 'header length 100000001 exceeds the 100000000-byte limit' },
    { what: 'a header longer than the file', bytes: fileBytes('{}', 0, 1000n), problem: 'header length 1000 runs past the end of the file (10 bytes)' },
    { what: 'a header that is not UTF-8', bytes: fileBytes(new Uint8Array([0x7b, 0xff, 0x7d])), problem: 'header is not valid UTF-8' },
    { what: 'a header that is not JSON', bytes: fileBytes('{"w":'), problem: 'header is not valid JSON' },
    { what: 'a header that is a JSON array', bytes: fileBytes('[]'), problem: 'header must be a JSON object mapping tensor names to {dtype, shape, data_offsets}, got []' },
    { what: 'an entry that is not an object', bytes: fileBytes('{"w":5}'), problem: 'tensor "w": expected an object {dtype, shape, data_offsets}, got 5' },
    { what: 'a missing dtype', bytes: fileBytes(json({ w: { shape: [1], data_offsets: [0, 4] } }), 4), problem: 'tensor "w": missing "dtype"' },
    { what: 'an unknown dtype', bytes: fileBytes(json({ w: entry('float32', [1], 0, 4) }), 4), problem: 'tensor "w": dtype "float32" is not a safetensors dtype (known: BOOL, F4,' },
    { what: 'a missing shape', bytes: fileBytes(json({ w: { dtype: 'F32', data_offsets: [0, 4] } }), 4), problem: 'tensor "w": missing "shape"' },
    { what: 'a negative dimension', bytes: fileBytes(json({ w: entry('F32', [-1], 0, 4) }), 4), problem: 'tensor "w": "shape" must be an array of non-negative integers, got [-1]' },
    { what: 'a fractional dimension', bytes: fileBytes(json({ w: entry('F32', [1.5], 0, 4) }), 4), problem: 'tensor "w": "shape" must be an array of non-negative integers, got [1.5]' },
    { what: 'a shape that is a string', bytes: fileBytes(json({ w: { dtype: 'F32', shape: '2x2', data_offsets: [0, 16] } }), 16), problem: 'tensor "w": "shape" must be an array of non-negative integers, got "2x2"' },
    { what: 'missing data_offsets', bytes: fileBytes(json({ w: { dtype: 'F32', shape: [1] } }), 4), problem: 'tensor "w": missing "data_offsets"' },
    { what: 'three data_offsets', bytes: fileBytes(json({ w: { dtype: 'F32', shape: [1], data_offsets: [0, 4, 8] } }), 4), problem: 'tensor "w": "data_offsets" must be [begin, end], two non-negative integers, got [0,4,8]' },
    { what: 'an offset beyond 2^53', bytes: fileBytes('{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,100000000000000000000]}}'), problem: 'tensor "w": "data_offsets" must be [begin, end], two non-negative integers, got [0,100000000000000000000]' },
    { what: 'data_offsets that end before they begin', bytes: fileBytes(json({ w: entry('F32', [1], 8, 4) }), 8), problem: 'tensor "w": data_offsets [8, 4] end before they begin' },
    {
      what: 'a shape whose size does not match its offsets',
      bytes: fileBytes(json({ 'model.layers.0.mlp.up_proj.weight': entry('F32', [128, 64], 0, 32760) }), 32760),
      problem: 'tensor "model.layers.0.mlp.up_proj.weight": shape [128, 64] × F32 is 32768 bytes but data_offsets span 32760',
    },
    {
      what: 'a shape whose size would wrap around 2^64',
      bytes: fileBytes(json({ w: entry('U8', [2 ** 32, 2 ** 32], 0, 0) })),
      problem: 'tensor "w": shape [4294967296, 4294967296] × U8 is 18446744073709551616 bytes but data_offsets span 0',
    },
    { what: 'sub-byte elements that end mid-byte', bytes: fileBytes(json({ w: entry('F4', [3], 0, 2) }), 2), problem: 'tensor "w": shape [3] × F4 is 12 bits, not a whole number of bytes' },
    {
      what: 'overlapping tensors',
      bytes: fileBytes(json({ b: entry('F32', [2], 4, 12), a: entry('F32', [2], 0, 8) }), 12),
      problem: 'tensors "a" (data_offsets [0, 8]) and "b" (data_offsets [4, 12]) overlap',
    },
    {
      what: 'a hole between tensors',
      bytes: fileBytes(json({ a: entry('F32', [2], 0, 8), b: entry('F32', [2], 12, 20) }), 20),
      problem: '4 bytes between tensors "a" (ends at 8) and "b" (data_offsets [12, 20]) belong to no tensor',
    },
    {
      what: 'a hole before the first tensor',
      bytes: fileBytes(json({ a: entry('F32', [2], 4, 12) }), 12),
      problem: 'the first 4 bytes of the data buffer belong to no tensor: the first tensor is "a" (data_offsets [4, 12])',
    },
    {
      what: 'bytes after the last tensor',
      bytes: fileBytes(json({ a: entry('F32', [2], 0, 8) }), 12),
      problem: 'the last 4 bytes of the file belong to no tensor (the tensors end at data byte 8 of 12)',
    },
    {
      what: 'offsets beyond the end of the file',
      bytes: fileBytes(json({ a: entry('F32', [2], 0, 8) }), 4),
      problem: 'the tensors need 8 bytes of data but only 4 follow the header: the file is truncated (4 bytes missing)',
    },
    { what: 'metadata that is not a string map', bytes: fileBytes(json({ __metadata__: { step: 1 } })), problem: '"__metadata__" entry "step" must be a string, got 1' },
    { what: 'metadata that is a list', bytes: fileBytes(json({ __metadata__: ['pt'] })), problem: '"__metadata__" must be an object of strings, got ["pt"]' },
  ];
  for (const { what, bytes, problem } of cases) {
    it(`rejects ${what}`, async () => {
      const path = join(dir, 'model.safetensors');
      await writeFile(path, bytes);
      await rejectsWith(SafetensorsFile.open(path), path, problem);
    });
  }

  it('states the exact problem for a shape mismatch', async () => {
    const path = join(dir, 'model.safetensors');
    await writeFile(path, fileBytes(json({ 'model.layers.0.mlp.up_proj.weight': entry('F32', [128, 64], 0, 32760) }), 32760));
    await assert.rejects(SafetensorsFile.open(path), {
      name: 'SafetensorsError',
      message: `${path}: tensor "model.layers.0.mlp.up_proj.weight": shape [128, 64] × F32 is 32768 bytes but data_offsets span 32760`,
    });
  });

  it('accepts entries in any order, unknown fields, null metadata, zero-sized tensors and leading whitespace', async () => {
    const path = join(dir, 'model.safetensors');
    const header = json({ __metadata__: null, b: { ...entry('I32', [1], 4, 8), note: 'x' }, e: entry('F32', [0, 3], 4, 4), a: entry('BF16', [2], 0, 4) });
    await writeFile(path, fileBytes(` ${header}`, 8));
    const file = await SafetensorsFile.open(path);
    assert.deepEqual([...file.tensors.keys()], ['a', 'e', 'b']); // by data_offsets: e is [4, 4], b is [4, 8]
    assert.deepEqual(file.info('b'), { dtype: 'I32', shape: [1], byteLength: 4, offset: 8 + header.length + 1 + 4 });
    assert.deepEqual(file.metadata, {});
    await file.close();
  });

  it('says a file cut short is truncated, whether the cut is in the data or in the header', async () => {
    const path = join(dir, 'model.safetensors');
    await writeSafetensors(path, [{ name: 'w', dtype: 'F32', shape: [4], data: new Float32Array(4) }]);
    const { size } = await stat(path);
    await truncate(path, size - 3);
    await rejectsWith(SafetensorsFile.open(path), path, 'the file is truncated (3 bytes missing)');
    await truncate(path, 20);
    await rejectsWith(SafetensorsFile.open(path), path, 'runs past the end of the file (20 bytes): the file is truncated');
  });

  it('names the file when it cannot be opened', async () => {
    const path = join(dir, 'absent.safetensors');
    await rejectsWith(SafetensorsFile.open(path), path, 'cannot open: ENOENT');
  });
});

describe('SafetensorsFile reads lazily', () => {
  it('opens a sparse 32 GiB file, lists it, and reads its small tensor without touching the big one', async () => {
    const path = join(dir, 'huge.safetensors');
    const big = 2 ** 35; // 2^33 float32 values: 8× what one Buffer may hold
    assert.ok(big > bufferConstants.MAX_LENGTH);
    const header = JSON.stringify({
      __metadata__: { format: 'pt' },
      big: { dtype: 'F32', shape: [2 ** 33], data_offsets: [0, big] },
      small: { dtype: 'F16', shape: [2, 2], data_offsets: [big, big + 8] },
    });
    const handle = await open(path, 'w');
    await handle.write(fileBytes(header));
    const dataStart = 8 + Buffer.byteLength(header);
    await handle.write(new Uint8Array(new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x8000]).buffer), 0, 8, dataStart + big);
    await handle.close();

    const file = await SafetensorsFile.open(path);
    try {
      assert.equal(file.byteLength, dataStart + big + 8);
      assert.deepEqual([...file.tensors.keys()], ['big', 'small']);
      assert.deepEqual(file.info('big'), { dtype: 'F32', shape: [2 ** 33], byteLength: big, offset: dataStart });
      assert.deepEqual(file.metadata, { format: 'pt' });
      assertSameFloats(await file.readFloat32('small'), [1, -2, Infinity, -0]);
      await rejectsWith(file.readFloat32('big'), path, `tensor "big": shape [8589934592] × F32 needs 34359738368 bytes as float32, more than the ${bufferConstants.MAX_LENGTH} bytes one array can hold`);
    } finally {
      await file.close();
    }
  });

  it('reads F64 as float32 and refuses dtypes that are not floats', async () => {
    const path = join(dir, 'model.safetensors');
    const f64 = new Float64Array([1 / 3, 1e300, -0, NaN, -1e-300]);
    const header = JSON.stringify({ d: { dtype: 'F64', shape: [5], data_offsets: [0, 40] }, i: { dtype: 'I32', shape: [2], data_offsets: [40, 48] } });
    await writeFile(path, fileBytes(header, Buffer.concat([new Uint8Array(f64.buffer), Buffer.alloc(8)])));
    const file = await SafetensorsFile.open(path);
    try {
      assertSameFloats(await file.readFloat32('d'), [1 / 3, Infinity, -0, NaN, -0]);
      await rejectsWith(file.readFloat32('i'), path, 'tensor "i": dtype I32 cannot be read as float32 (readable: F64, F32, F16, BF16)');
    } finally {
      await file.close();
    }
  });

  it('answers an unknown name with the nearest names, and refuses reads once closed', async () => {
    const path = join(dir, 'model.safetensors');
    const names = ['model.layers.0.mlp.up_proj.weight', 'model.layers.0.mlp.down_proj.weight', 'model.layers.1.mlp.up_proj.weight', 'lm_head.weight'];
    await writeSafetensors(path, names.map((name) => ({ name, dtype: 'F32', shape: [1], data: new Float32Array(1) })));
    const file = await SafetensorsFile.open(path);
    await rejectsWith(
      file.readFloat32('model.layers.0.mlp.up_proj.weights'),
      path,
      'no tensor "model.layers.0.mlp.up_proj.weights"; nearest names: "model.layers.0.mlp.up_proj.weight", "model.layers.1.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight"',
    );
    await file.close();
    await rejectsWith(file.readFloat32('lm_head.weight'), path, 'tensor "lm_head.weight": cannot read, the file has been closed');
  });
});
