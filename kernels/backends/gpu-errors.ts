// WebGPU reports most failures (an invalid shader, a buffer past the device's limits, running out
// of memory) not by throwing but as "uncaptured errors" on the device, and tfjs-backend-webgpu
// does not listen: the kernel's output is left as it was and the run goes on with garbage (a
// gradient-norm sum past the storage-buffer limit did exactly that). The device is watched from
// the moment the backend starts; every read of values (kernels/backends/read.ts) throws what it reported.

/** What the GPU reported since the last read, as a thrown error. */
export class GpuError extends Error {
  constructor(readonly messages: readonly string[]) {
    const first = messages[0]!.split('\n')[0]!;
    super(`the GPU reported ${messages.length === 1 ? 'an error' : `${messages.length} errors`}; the first: ${first}`);
    this.name = 'GpuError';
  }

  /** Whether the device ran out of memory, which a smaller batch can fix. */
  get outOfMemory(): boolean {
    return this.messages.some((m) => /out of memory/i.test(m));
  }
}

export function isGpuError(error: unknown): error is GpuError {
  return error instanceof GpuError;
}

const reported: string[] = [];

/** Records a failure the GPU reported; the next read of values throws it. */
export function reportGpuError(message: string): void {
  reported.push(message);
}

interface WatchedDevice {
  addEventListener(type: 'uncapturederror', listener: (event: { error: { message: string } }) => void): void;
  lost: Promise<{ message: string; reason?: string }>;
}

export function watchGpuErrors(device: WatchedDevice): void {
  device.addEventListener('uncapturederror', (event) => reportGpuError(event.error.message));
  // 'destroyed': on purpose (the backend disposed); anything else: the driver or the GPU failed
  void device.lost.then((info) => {
    if (info.reason !== 'destroyed') reportGpuError(`the device was lost: ${info.message}`);
  });
}

/** Throws (and clears) what the GPU reported since the last call. */
export function throwIfGpuFailed(): void {
  if (reported.length === 0) return;
  const messages = reported.splice(0);
  throw new GpuError(messages);
}
