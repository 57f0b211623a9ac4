// Frozen weights read from a checkpoint straight into the native weight store (kernels/quant.ts),
// tensor by tensor and a block of rows at a time: the float32 values of one block (BLOCK_BYTES at
// most) exist at once, never a whole tensor's or a shard's, and each block is rounded or quantised
// into its matrix as it arrives. A checkpoint's F32, F16 and BF16 tensors all read this way.
//
// Matrices are stored as nn.Linear's [d_out, d_in]. A tensor held 'in_out' (GPT-2's Conv1D,
// [d_in, d_out]) is read in blocks of d_in rows, whole groups of them, and transposed block by
// block.
import { PackedMatrix, checkBaseFormat, isGrouped, type BaseFormat } from './quant';

/** What the loader reads: server/formats' Checkpoint (or one safetensors file) fits. */
export interface RowReader {
  info(name: string): { shape: readonly number[]; byteLength: number };
  /** Rows [first, first + count) along the first axis, as float32. */
  readFloat32Rows(name: string, first: number, count: number): Promise<Float32Array>;
}

/** A weight to load: the tensor as the checkpoint names it, and how it holds W. */
export interface WeightRequest {
  tensor: string;
  layout: 'out_in' | 'in_out';
}

export interface LoadProgress {
  /** The tensor being read. */
  tensor: string;
  /** Tensors finished, of `tensors`. */
  done: number;
  tensors: number;
  /** Bytes read from the checkpoint so far, of `bytesTotal`. */
  bytesRead: number;
  bytesTotal: number;
}

export interface LoadOptions {
  /** Called after every block read. */
  onProgress?: (progress: LoadProgress) => void;
  /** Bytes of float32 values per block read (BLOCK_BYTES unless given). */
  blockBytes?: number;
}

export const BLOCK_BYTES = 16 * 1024 ** 2;

/**
 * The requested weights, each read once (a tied lm_head and its embedding name one tensor), as
 * packed matrices [d_out, d_in] at `format`, by tensor name.
 */
export async function loadPackedMatrices(reader: RowReader, requests: readonly WeightRequest[], format: BaseFormat, options: LoadOptions = {}): Promise<Map<string, PackedMatrix>> {
  checkBaseFormat(format);
  const blockBytes = options.blockBytes ?? BLOCK_BYTES;
  const layouts = new Map<string, WeightRequest['layout']>();
  for (const { tensor, layout } of requests) {
    const other = layouts.get(tensor);
    if (other !== undefined && other !== layout) throw new Error(`tensor ${JSON.stringify(tensor)} is requested as ${other} and as ${layout}`);
    layouts.set(tensor, layout);
  }
  const infos = new Map([...layouts.keys()].map((tensor) => [tensor, reader.info(tensor)]));
  const progress: LoadProgress = { tensor: '', done: 0, tensors: layouts.size, bytesRead: 0, bytesTotal: [...infos.values()].reduce((sum, i) => sum + i.byteLength, 0) };
  const matrices = new Map<string, PackedMatrix>();
  for (const [tensor, layout] of layouts) {
    const { shape, byteLength } = infos.get(tensor)!;
    if (shape.length !== 2 || shape[0] === 0 || shape[1] === 0) {
      throw new Error(`tensor ${JSON.stringify(tensor)}: a linear weight must be a non-empty matrix, got shape [${shape.join(', ')}]`);
    }
    const [stored0, stored1] = shape as [number, number];
    const matrix = PackedMatrix.allocate(layout === 'out_in' ? stored0 : stored1, layout === 'out_in' ? stored1 : stored0, format);
    // Rows of the stored tensor per block; d_in rows of an in_out tensor cover whole groups.
    const unit = layout === 'in_out' && isGrouped(format.precision) ? format.groupSize : 1;
    const perBlock = Math.max(unit, Math.floor(blockBytes / (4 * stored1) / unit) * unit);
    progress.tensor = tensor;
    for (let first = 0; first < stored0; first += perBlock) {
      const count = Math.min(perBlock, stored0 - first);
      const block = await reader.readFloat32Rows(tensor, first, count);
      try {
        if (layout === 'out_in') matrix.write(block, first, count);
        else matrix.write(transposed(block, count, stored1), 0, stored1, first, count);
      } catch (error) {
        throw new Error(`tensor ${JSON.stringify(tensor)}: ${(error as Error).message}`, { cause: error });
      }
      progress.bytesRead += (byteLength * count) / stored0;
      if (first + count === stored0) {
        matrices.set(tensor, matrix);
        progress.done++;
      }
      options.onProgress?.({ ...progress });
    }
  }
  return matrices;
}

/** [rows, cols] → [cols, rows]. */
function transposed(values: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = values[r * cols + c]!;
  return out;
}
