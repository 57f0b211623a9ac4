// The one handle on VS Code: typed messages out, typed persisted state.
import type { WebviewMessage } from '../../protocol/webview';

interface RawApi {
  postMessage(message: unknown): void;
  getState(): unknown;
  setState(state: unknown): void;
}

// Defined by VS Code in every webview; callable once per page.
declare const acquireVsCodeApi: (() => RawApi) | undefined;

export interface VsCodeApi<S> {
  post(message: WebviewMessage): void;
  getState(): S | undefined;
  setState(state: S): void;
}

export function vscodeApi<S>(): VsCodeApi<S> {
  const raw: RawApi =
    typeof acquireVsCodeApi === 'function'
      ? acquireVsCodeApi()
      : // opened as a plain page (development): nothing to talk to, nothing persisted
        { postMessage: () => undefined, getState: () => undefined, setState: () => undefined };
  return {
    post: (message) => raw.postMessage(message),
    getState: () => (raw.getState() ?? undefined) as S | undefined,
    setState: (state) => raw.setState(state),
  };
}
