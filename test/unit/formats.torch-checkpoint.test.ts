// torch.save's zip format, read as a state dict: test/fixtures/peft/tiny-bin-moslora/adapter holds
// an adapter_model.bin that torch 1.13 wrote (scripts/reference/make_bin_adapter.py) with F32, F16
// and BF16 storages, a transposed view and two views sharing one storage; tensors.safetensors
// holds the same tensors, contiguous. Hand-built zips and pickles check the refusals.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ZipFile } from 'yazl';
import { SafetensorsFile } from '../../server/formats/safetensors';
import { TorchCheckpoint } from '../../server/formats/torch-checkpoint';
import { floats, global, int, OP, pickle, stateDictPickle, str, tensorPickle, zip, type PickledTensor } from '../helpers/torch-files';

const FIXTURE = join(__dirname, '..', 'fixtures', 'peft', 'tiny-bin-moslora');
const BIN = join(FIXTURE, 'adapter', 'adapter_model.bin');
let dir: string;

async function write(name: string, bytes: Uint8Array): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** A torch.save-style zip of one state dict: `tensors` in data.pkl, `storages` as data/<key>. */
async function checkpoint(name: string, tensors: PickledTensor[], storages: Record<string, Uint8Array>, pkl = stateDictPickle(tensors)): Promise<string> {
  // as torch ≥ 2.1 writes it (the fixture, from torch 1.13, has no byteorder entry)
  const entries: Record<string, Uint8Array> = { 'archive/data.pkl': pkl, 'archive/byteorder': Buffer.from('little'), 'archive/version': Buffer.from('3\n') };
  for (const [key, data] of Object.entries(storages)) entries[`archive/data/${key}`] = data;
  return write(name, await zip(entries));
}

async function refusal(path: string): Promise<string> {
  try {
    const file = await TorchCheckpoint.open(path);
    for (const name of file.tensors.keys()) await file.readFloat32(name);
    await file.close();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error(`${path} was read`);
}

describe('torch.save checkpoints', () => {
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'moslora-torch-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('reads the fixture exactly: dtypes, shapes and values, strided and shared views included', async () => {
    const bin = await TorchCheckpoint.open(BIN);
    const twin = await SafetensorsFile.open(join(FIXTURE, 'tensors.safetensors'));
    try {
      assert.deepEqual([...bin.tensors.keys()].sort(), [...twin.tensors.keys()].sort());
      assert.deepEqual(new Set([...bin.tensors.values()].map((t) => t.dtype)), new Set(['F32', 'F16', 'BF16']));
      for (const [name, { dtype, shape }] of bin.tensors) {
        assert.equal(dtype, twin.tensors.get(name)!.dtype, name);
        assert.deepEqual(shape, twin.tensors.get(name)!.shape, name);
        assert.deepEqual(await bin.readFloat32(name), await twin.readFloat32(name), name);
      }
    } finally {
      await bin.close();
      await twin.close();
    }
  });

  it('copies strided views row-major and keeps offsets into shared storages', async () => {
    // storage 0: [0, 1, …, 11]; "t" is its [3, 4] block transposed, "s" a [2, 2] view at offset 5
    const path = await checkpoint(
      'views.bin',
      [
        { name: 't', key: '0', numel: 12, shape: [4, 3], stride: [1, 4] },
        { name: 's', key: '0', numel: 12, offset: 5, shape: [2, 2], stride: [3, 1] },
      ],
      { '0': floats([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]) },
    );
    const file = await TorchCheckpoint.open(path);
    assert.deepEqual([...(await file.readFloat32('t'))], [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]);
    assert.deepEqual([...(await file.readFloat32('s'))], [5, 6, 8, 9]);
    await file.close();
  });

  it("reads model.state_dict()'s form: an OrderedDict whose _metadata (module versions) is set by BUILD", async () => {
    const orderedDict = () => pickle(global('collections', 'OrderedDict'), OP.EMPTY_TUPLE, OP.REDUCE);
    const tensor: PickledTensor = { name: 'w', key: '0', numel: 2, shape: [2] };
    const metadata = pickle(OP.EMPTY_DICT, str('_metadata'), orderedDict(), OP.MARK, str(''), OP.EMPTY_DICT, str('version'), int(1), OP.SETITEM, OP.SETITEMS, OP.SETITEM);
    const pkl = pickle(OP.PROTO, 2, orderedDict(), OP.MARK, str('w'), tensorPickle(tensor), OP.SETITEMS, metadata, OP.BUILD, OP.STOP);
    const file = await TorchCheckpoint.open(await checkpoint('state-dict.bin', [tensor], { '0': floats([1.5, -2]) }, pkl));
    assert.deepEqual([...file.tensors.keys()], ['w']);
    assert.deepEqual([...(await file.readFloat32('w'))], [1.5, -2]);
    await file.close();
  });

  it('refuses a pickle that reaches for anything but tensor rebuilds, naming the global', async () => {
    const attack = (...parts: Parameters<typeof pickle>) => pickle(OP.PROTO, 2, OP.EMPTY_DICT, str('w'), ...parts, OP.SETITEM, OP.STOP);
    const cases: [string, Uint8Array, RegExp][] = [
      ['system.bin', attack(global('os', 'system'), str('touch /tmp/pwned'), OP.TUPLE1, OP.REDUCE), /archive\/data\.pkl: at byte 9: GLOBAL: refused the global os\.system: only collections\.OrderedDict, torch\._utils\._rebuild_tensor_v2, torch\.FloatStorage, torch\.HalfStorage, torch\.BFloat16Storage may appear here; nothing was imported or run/],
      ['eval.bin', attack(str('builtins'), str('eval'), OP.STACK_GLOBAL, str('0'), OP.TUPLE1, OP.REDUCE), /STACK_GLOBAL: refused the global builtins\.eval/],
      ['double.bin', stateDictPickle([{ name: 'w', key: '0', numel: 1, shape: [1], storageType: 'DoubleStorage' }]), /refused the global torch\.DoubleStorage/],
      ['storage-call.bin', attack(global('torch', 'FloatStorage'), OP.EMPTY_TUPLE, OP.REDUCE), /REDUCE: torch\.FloatStorage may appear here but not be called/],
      ['hooks.bin', pickle(OP.PROTO, 2, OP.EMPTY_DICT, str('w'), tensorPickle({ name: 'w', key: '0', numel: 1, shape: [1] }), OP.EMPTY_DICT, OP.BUILD, OP.SETITEM, OP.STOP), /BUILD: sets the state of a tensor; only an OrderedDict's _metadata may be set/],
      ['not-a-dict.bin', pickle(OP.PROTO, 2, str('hello'), OP.STOP), /archive\/data\.pkl holds "hello", not a state dict \{name: tensor\}/],
      ['not-a-tensor.bin', attack(OP.NONE), /archive\/data\.pkl: "w" is None, not a tensor/],
    ];
    for (const [name, pkl, expected] of cases) {
      assert.match(await refusal(await checkpoint(name, [], { '0': floats([1]) }, pkl)), expected, name);
    }
  });

  it('refuses a view outside its storage and a storage of the wrong size', async () => {
    const beyond = await checkpoint('beyond.bin', [{ name: 'w', key: '0', numel: 4, offset: 1, shape: [2, 2] }], { '0': floats([1, 2, 3, 4]) });
    assert.match(await refusal(beyond), /tensor "w": offset 1, size \[2, 2\] and stride \[2, 1\] reach element 4 of storage 0, which has 4/);
    const short = await checkpoint('short.bin', [{ name: 'w', key: '0', numel: 4, shape: [4] }], { '0': floats([1, 2, 3]) });
    assert.match(await refusal(short), /tensor "w": archive\/data\/0 holds 12 bytes, but data\.pkl says 4 × F32 = 16/);
    const missing = await checkpoint('missing.bin', [{ name: 'w', key: '7', numel: 1, shape: [1] }], {});
    assert.match(await refusal(missing), /tensor "w": its storage archive\/data\/7 is not in the zip/);
  });

  it('refuses truncated, damaged and foreign files precisely', async () => {
    const bytes = await readFile(BIN);
    for (const length of [bytes.length - 1, Math.floor(bytes.length / 2), 100]) {
      assert.match(await refusal(await write(`cut-${length}.bin`, bytes.subarray(0, length))), /not a readable zip archive: End of central directory record signature not found\. Either not a zip file, or file is truncated\./);
    }
    // a flipped bit in a storage's data, after its local header (30 bytes, the name, the extra field): only its CRC-32 tells
    const flipped = Buffer.from(bytes);
    const name = 'adapter_model/data/0';
    const header = flipped.indexOf(name) - 30;
    flipped[header + 30 + name.length + flipped.readUInt16LE(header + 28) + 100]! ^= 1;
    assert.match(await refusal(await write('flipped.bin', flipped)), /adapter_model\/data\/0: its CRC-32 is 0x[0-9a-f]{8} but the zip's directory says 0x[0-9a-f]{8}: the file is damaged/);
    assert.match(await refusal(await write('legacy.bin', pickle(OP.PROTO, 2, OP.NONE, OP.STOP))), /torch\.save's pre-1\.6 format .* save it again with torch ≥ 1\.6's default format, or as safetensors/);
    assert.match(await refusal(await write('empty.bin', new Uint8Array())), /not a PyTorch checkpoint: it starts with nothing \(the file is empty\)/);
    assert.match(await refusal(await write('text.bin', Buffer.from('hello'))), /not a PyTorch checkpoint: it starts with bytes 0x68 0x65, not a zip archive's "PK"/);
    assert.match(await refusal(await write('other.zip', await zip({ 'README.md': Buffer.from('hi') }))), /the zip holds no <folder>\/data\.pkl: it is not a checkpoint torch\.save wrote/);
    const twice = new ZipFile();
    for (const data of [stateDictPickle([]), Buffer.from('x')]) twice.addBuffer(Buffer.from(data), 'a/data.pkl', { compress: false });
    twice.end();
    const chunks: Buffer[] = [];
    for await (const chunk of twice.outputStream) chunks.push(chunk as Buffer);
    assert.match(await refusal(await write('twice.bin', Buffer.concat(chunks))), /the zip lists a\/data\.pkl twice/);
    assert.match(await refusal(await write('big.bin', await zip({ 'a/data.pkl': stateDictPickle([]), 'a/byteorder': Buffer.from('big') }))), /a\/byteorder says "big"; only little-endian checkpoints are read/);
  });
});
