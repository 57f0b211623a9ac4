// The compute backends by name, and which one a process started: what configs, settings, the
// CLI's options and the editor's environment report name, without loading TensorFlow.js.
export const BACKENDS = ['tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];
export const BACKEND_PREFERENCES = ['auto', ...BACKENDS] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

/** The backend a process started, on what device, and why the ones before it were passed over. */
export interface BackendChoice {
  backend: BackendName;
  /** What is known of the device it runs on. */
  device: string;
  /** Backends tried before this one, with why each was passed over. */
  skipped: { backend: BackendName; reason: string }[];
}
