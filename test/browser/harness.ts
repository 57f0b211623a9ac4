// Serves the BUILT panel (dist/webview/) the way VS Code shows it: the page from protocol/webview-page.ts
// with its strict CSP and a nonce, plus a stub of what VS Code injects (acquireVsCodeApi, which
// here records every posted message and keeps setState in sessionStorage so a reload restores;
// the theme's CSS variables and body class). Listens on 127.0.0.1 only, on a random port.
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { PANEL_ASSETS, webviewHtml } from '../../protocol/webview-page';
import { THEME_NAMES, THEMES, type ThemeName } from './themes';

const DIST = join(import.meta.dirname, '..', '..', 'dist', 'webview');
const CHROMIUM = '/usr/bin/chromium';

/** Why the browser tier cannot run here (no Chromium, no built panel), or null. */
export const browserMissing = existsSync(CHROMIUM)
  ? existsSync(join(DIST, 'panel.js'))
    ? null
    : 'dist/webview/panel.js is missing: run `npm run build` first (npm run test:browser does)'
  : `no Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` to run the browser tests`;
// Locally a missing browser skips this tier with the reason; in CI it must run, so it fails.
export const browserSkip = browserMissing !== null && !process.env.CI ? browserMissing : false;

/** Debian's headless Chromium, with nothing of its own going to the network. */
export function launchChromium(): Promise<Browser> {
  if (browserMissing) throw new Error(browserMissing);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}
const TYPES: Record<string, string> = { '.js': 'text/javascript', '.css': 'text/css', '.map': 'application/json' };

/** Runs in the page before the panel: what VS Code's webview host provides. */
function stub(theme: ThemeName): string {
  return `(() => {
  const themes = ${JSON.stringify(THEMES)};
  window.__setTheme = (name) => {
    const t = themes[name];
    const html = document.documentElement;
    // VS Code replaces the variables whole: one theme's never linger under another's
    html.removeAttribute('style');
    for (const [key, value] of Object.entries(t.vars)) html.style.setProperty(key, value);
    document.body.classList.remove('vscode-light', 'vscode-dark', 'vscode-high-contrast');
    document.body.classList.add(t.bodyClass);
    document.body.dataset.vscodeThemeKind = t.kind;
  };
  window.__setTheme(${JSON.stringify(theme)});
  window.__posted = [];
  let acquired = false;
  window.acquireVsCodeApi = () => {
    if (acquired) throw new Error('An instance of the VS Code API has already been acquired');
    acquired = true;
    return {
      postMessage: (message) => window.__posted.push(JSON.parse(JSON.stringify(message))),
      getState: () => { const s = sessionStorage.getItem('vscodeState'); return s === null ? undefined : JSON.parse(s); },
      setState: (state) => { sessionStorage.setItem('vscodeState', JSON.stringify(state)); return state; },
    };
  };
})();`;
}

export interface Harness {
  origin: string;
  /** The panel page in a theme. */
  url(theme: ThemeName): string;
  close(): Promise<void>;
}

export async function startHarness(): Promise<Harness> {
  let origin = '';
  const server: Server = createServer((request, response) => {
    void (async () => {
      const url = new URL(request.url ?? '/', origin);
      const asked = url.searchParams.get('theme');
      const theme: ThemeName = THEME_NAMES.find((name) => name === asked) ?? 'dark';
      if (url.pathname === '/panel.html') {
        const nonce = randomBytes(16).toString('base64');
        const page = webviewHtml({
          cspSource: origin,
          nonce,
          scriptUri: `${origin}/dist/${PANEL_ASSETS.script}`,
          styleUri: `${origin}/dist/${PANEL_ASSETS.style}`,
        }).replace('<script nonce=', `<script nonce="${nonce}" src="/stub.js?theme=${theme}"></script>\n<script nonce=`);
        response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
      } else if (url.pathname === '/stub.js') {
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(stub(theme));
      } else if (/^\/dist\/[\w.-]+$/.test(url.pathname)) {
        const name = url.pathname.slice('/dist/'.length);
        const body = await readFile(join(DIST, name)).catch(() => undefined);
        if (!body) {
          response.writeHead(404).end();
          return;
        }
        response.writeHead(200, { 'content-type': TYPES[name.slice(name.lastIndexOf('.'))] ?? 'application/octet-stream' }).end(body);
      } else {
        response.writeHead(404).end();
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('harness: no port');
  origin = `http://127.0.0.1:${address.port}`;
  return {
    origin,
    url: (theme) => `${origin}/panel.html?theme=${theme}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
