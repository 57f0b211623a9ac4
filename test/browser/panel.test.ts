// The built training panel in headless Chromium, under the CSP VS Code would give it, fed the
// messages the extension sends (test/fixtures/webview/run.json). Screenshots go to
// test-artifacts/browser/ (look at them).
//   npm run test:browser       (builds first; needs /usr/bin/chromium: apt-get install chromium)
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { diverging } from '../../webview/heatmap/colormap';
import { parseWebviewMessage, type ExtensionMessage, type WebviewMessage } from '../../protocol/webview';
import { startHarness, type Harness } from './harness';
import { hexToRgb, THEMES, type ThemeName } from './themes';
import type { MixerSnapshot } from '../../protocol/records';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'browser');
const fixture = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'webview', 'run.json'), 'utf8')) as {
  runId: string;
  total: number;
  messages: ExtensionMessage[];
};

const missing = existsSync(CHROMIUM)
  ? existsSync(join(ROOT, 'dist', 'webview', 'panel.js'))
    ? null
    : 'dist/webview/panel.js is missing: run `npm run build` first (npm run test:browser does)'
  : `no Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` to run the browser tests`;
// Locally a missing browser skips this tier with the reason; in CI it must run, so it fails.
const skip = missing !== null && !process.env.CI ? missing : false;

/** What the page exposes to the tests: the stub's records, and each chart's uPlot. */
interface PageGlobals {
  __posted: unknown[];
  __setTheme(name: ThemeName): void;
  __csp: string[];
}
interface ChartElement extends HTMLElement {
  uplot: { data: ArrayLike<number | null | undefined>[]; series: { label: string; stroke: (u: unknown, i: number) => string }[] };
}

const finalState = [...fixture.messages].reverse().find((m) => m.type === 'runState')!;
const listedRuns = fixture.messages.find((m) => m.type === 'runs');
const baselineRun = listedRuns?.type === 'runs' ? listedRuns.runs[0]! : undefined;
const trainRecords = fixture.messages.flatMap((m) => (m.type === 'metrics' && m.runId === fixture.runId ? m.records : [])).filter((r) => r.kind === 'train');
const snapshots = fixture.messages.flatMap((m) => (m.type === 'mixers' ? m.snapshots : []));

/** TensorBoard's smoothing, written out again here as the reference. */
function referenceEma(values: number[], w: number): number[] {
  let last = 0;
  return values.map((x, t) => {
    last = last * w + (1 - w) * x;
    return last / (1 - w ** (t + 1));
  });
}

describe('training panel in Chromium', { skip }, () => {
  let browser: Browser;
  let harness: Harness;

  before(async () => {
    if (missing) throw new Error(missing);
    mkdirSync(ARTIFACTS, { recursive: true });
    harness = await startHarness();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
  });

  after(async () => {
    await browser?.close();
    await harness?.close();
  });

  /** A fresh page in a theme, loaded and ready, with console errors and CSP violations collected. */
  async function open(theme: ThemeName): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
    const errors: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') errors.push(`console ${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => errors.push(`page error: ${error.message}`));
    page.on('requestfailed', (request) => errors.push(`request failed: ${request.url()}`));
    await page.addInitScript(() => {
      const g = window as unknown as PageGlobals;
      g.__csp = [];
      document.addEventListener('securitypolicyviolation', (e) => g.__csp.push(`${e.violatedDirective} ${e.blockedURI}`));
    });
    await page.goto(harness.url(theme));
    await page.waitForSelector('body[data-ready="true"]');
    return { page, errors };
  }

  async function send(page: Page, messages: readonly ExtensionMessage[]): Promise<void> {
    await page.evaluate((ms) => {
      for (const m of ms) window.postMessage(m, '*');
    }, messages);
  }

  /** Every message the page posted, each checked with the extension's own validator. */
  async function posted(page: Page): Promise<WebviewMessage[]> {
    const raw = await page.evaluate(() => (window as unknown as PageGlobals).__posted);
    return raw.map((message) => {
      const parsed = parseWebviewMessage(message);
      assert.ok(parsed.ok, `the page posted a message the extension would refuse: ${JSON.stringify(message).slice(0, 200)} (${parsed.ok ? '' : parsed.error})`);
      return parsed.message;
    });
  }

  async function chart(page: Page, id: string): Promise<{ data: (number | null)[][]; labels: string[]; strokes: string[]; total: number; drawn: number }> {
    return page.evaluate((chartId) => {
      const el = document.querySelector<ChartElement>(`[data-chart="${chartId}"]`)!;
      const u = el.uplot;
      return {
        data: u.data.map((column) => Array.from(column, (v) => (v === undefined ? null : v))),
        labels: u.series.map((s) => s.label),
        strokes: u.series.slice(1).map((s, i) => s.stroke(u, i + 1)),
        total: Number(el.dataset.pointsTotal),
        drawn: Number(el.dataset.pointsDrawn),
      };
    }, id);
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, name), fullPage: true });
  }

  async function feed(page: Page): Promise<void> {
    await send(page, fixture.messages);
    await page.waitForFunction((n) => document.querySelector('[data-chart="train/loss"]')?.getAttribute('data-points-drawn') === String(n), trainRecords.length);
  }

  async function tab(page: Page, name: 'Training' | 'Compare' | 'Mixers'): Promise<void> {
    await page.locator('vscode-tab-header', { hasText: name }).click();
  }

  test('loads under the strict CSP with no console errors, and says ready', async () => {
    const { page, errors } = await open('dark');
    await feed(page);
    assert.deepEqual(errors, []);
    assert.deepEqual(await page.evaluate(() => (window as unknown as PageGlobals).__csp), []);
    const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
    assert.match(csp!, /^default-src 'none'; script-src 'nonce-[^']+'; style-src http:\/\/127\.0\.0\.1:\d+ 'nonce-[^']+'$/);
    assert.deepEqual((await posted(page))[0], { type: 'ready', protocol: 1 });
    await page.close();
  });

  test('the loss chart has every point, and its smoothed curve is the debiased EMA', async () => {
    const { page, errors } = await open('dark');
    await feed(page);
    const loss = await chart(page, 'train/loss');
    assert.deepEqual(loss.labels, ['step', 'train loss (raw)', 'train loss', 'eval loss']);
    const steps = trainRecords.map((r) => r.step);
    const raw = trainRecords.map((r) => r.loss as number);
    assert.deepEqual(loss.data[0], steps, 'x is every train step (eval steps are among them)');
    assert.deepEqual(loss.data[1], raw);
    const close = (actual: (number | null)[], expected: number[]): void =>
      expected.forEach((e, i) => assert.ok(Math.abs(actual[i]! - e) <= 1e-12 * Math.abs(e), `EMA at ${i}: ${actual[i]} ≠ ${e}`));
    close(loss.data[2]!, referenceEma(raw, 0.6));
    const evalSteps = fixture.messages.flatMap((m) => (m.type === 'metrics' ? m.records : [])).filter((r) => r.kind === 'eval');
    assert.equal(loss.data[3]!.filter((v) => v !== null).length, evalSteps.length);

    // the slider: TensorBoard's range, the curve follows, the extension hears once the drag settles
    await page.locator('.smoothing').fill('0.95');
    await page.waitForFunction(() => (window as unknown as PageGlobals).__posted.some((m) => (m as { type: string }).type === 'setSmoothing'));
    close((await chart(page, 'train/loss')).data[2]!, referenceEma(raw, 0.95));
    assert.deepEqual((await posted(page)).filter((m) => m.type === 'setSmoothing'), [{ type: 'setSmoothing', weight: 0.95 }]);

    // the header: state, step/total, backend and device
    const header = await page.locator('.run-header').innerText();
    assert.ok(finalState.type === 'runState');
    assert.ok(header.includes(finalState.state.name), `${header} names the run`);
    assert.match(header, new RegExp(`step ${fixture.total} / ${fixture.total} · epoch \\d+`));
    assert.equal(await page.locator('[data-chart="train/epoch"]').count(), 0, 'no chart of the epoch');
    assert.ok(header.includes(`${finalState.state.backend} · ${finalState.state.device}`), `${header} shows backend and device`);
    for (const id of ['eval/accuracy', 'train/lr', 'train/grad_norm', 'train/tokens_per_s']) {
      assert.equal((await chart(page, id)).drawn, id.startsWith('eval') ? evalSteps.length : trainRecords.length, id);
    }
    await page.locator('.smoothing').fill('0.6');
    await page.waitForTimeout(100);
    await shot(page, 'training-dark.png');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('Stop posts exactly {type: "stop", runId}, once', async () => {
    const { page } = await open('dark');
    await feed(page);
    const training = [...fixture.messages].reverse().find((m) => m.type === 'runState')!;
    assert.equal(training.type, 'runState');
    // live again, 84 s in (the recording's clock is long gone)
    const { finishedAt: _finished, ...live } = training.state;
    const startedAt = Date.now() - 84_000;
    await send(page, [{ type: 'runState', state: { ...live, phase: 'training', step: Math.floor(fixture.total / 2), startedAt } }]);
    const stop = page.locator('.run-header vscode-button.stop');
    await page.waitForFunction(() => document.querySelector('.phase')?.textContent === 'training');
    assert.match(await page.locator('.run-header').innerText(), /ETA \d+:\d\d/);
    await stop.click();
    await stop.click({ force: true });
    await page.waitForTimeout(50);
    const stops = (await posted(page)).filter((m) => m.type === 'stop');
    assert.deepEqual(stops, [{ type: 'stop', runId: fixture.runId }]);
    assert.equal(await stop.innerText(), 'Stopping…');
    await send(page, [{ type: 'runState', state: { ...live, startedAt, phase: 'stopped', step: 201, reason: 'Stopped by the user at step 201; the adapter was saved.', finishedAt: Date.now() } }]);
    await page.waitForFunction(() => document.querySelector('.phase')?.textContent === 'stopped');
    assert.equal(await stop.getAttribute('disabled'), '');
    assert.match(await page.locator('.banner').innerText(), /Stopped by the user at step 201/);
    await shot(page, 'training-stopped-dark.png');
    await page.close();
  });

  test('the mixer heatmap: r×r cells, positive values in the positive colour, 0 in the neutral one', async () => {
    const { page, errors } = await open('dark');
    await feed(page);
    await tab(page, 'Mixers');
    const heatmap = page.locator('canvas.heatmap');
    await page.waitForSelector('canvas.heatmap[data-r="8"]');
    const module = 'model.layers.0.self_attn.q_proj';
    assert.equal(await heatmap.getAttribute('data-module'), module);
    const list = snapshots.filter((s) => s.module === module);
    const last = list.at(-1)!;
    assert.equal(await heatmap.getAttribute('data-step'), String(last.step));
    const limit = Math.max(...list.flatMap((s) => s.values.map((v) => Math.abs(v!))));
    assert.ok(Math.abs(Number(await heatmap.getAttribute('data-limit')) - limit) < 1e-12);
    const cell = Number(await heatmap.getAttribute('data-cell-px'));
    const box = (await heatmap.boundingBox())!;
    assert.equal(Math.round(box.width), 8 * cell);
    assert.equal(Math.round(box.height), 8 * cell);

    const theme = THEMES.dark.vars;
    const [blue, neutral, red] = ['--vscode-charts-blue', '--vscode-editor-background', '--vscode-charts-red'].map((v) => hexToRgb(theme[v]!)) as [
      ReturnType<typeof hexToRgb>,
      ReturnType<typeof hexToRgb>,
      ReturnType<typeof hexToRgb>,
    ];
    const pixel = (i: number, j: number) =>
      page.evaluate(
        ([x, y]) => {
          // read through a copy, so the panel's own canvas is never read back
          const c = document.querySelector<HTMLCanvasElement>('canvas.heatmap')!;
          const copy = document.createElement('canvas');
          copy.width = copy.height = 1;
          const ctx = copy.getContext('2d', { willReadFrequently: true })!;
          ctx.drawImage(c, x!, y!, 1, 1, 0, 0, 1, 1);
          const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
          return { r: r!, g: g!, b: b! };
        },
        [Math.floor((j + 0.5) * cell), Math.floor((i + 0.5) * cell)],
      );
    const near = (a: { r: number; g: number; b: number }, b: { r: number; g: number; b: number }, what: string): void =>
      assert.ok(Math.abs(a.r - b.r) <= 2 && Math.abs(a.g - b.g) <= 2 && Math.abs(a.b - b.b) <= 2, `${what}: ${JSON.stringify(a)} ≠ ${JSON.stringify(b)}`);

    // the largest positive entry of the last snapshot (a diagonal one: M starts near I)
    const argmax = last.values.reduce<number>((best, v, k) => (v! > last.values[best]! ? k : best), 0);
    const [i, j] = [Math.floor(argmax / 8), argmax % 8];
    const v = last.values[argmax]!;
    near(await pixel(i, j), diverging(v, limit, blue, neutral, red), `cell (${i}, ${j}) = ${v}`);
    if (v === limit) near(await pixel(i, j), red, 'the largest value is the full positive colour');
    const reddish = await pixel(i, j);
    assert.ok(reddish.r > reddish.b, 'a positive value leans to the positive colour');

    // hover shows the value
    await page.mouse.move(box.x + (j + 0.5) * cell, box.y + (i + 0.5) * cell);
    assert.equal(await page.locator('.mixer-tooltip').innerText(), `${module}\nM[${i}, ${j}] = ${v.toPrecision(4)}`);
    await page.mouse.move(0, 0);

    // the side: ‖M − I‖_F and the singular values
    assert.equal(await page.locator('[data-figure="distance"]').innerText(), String(Number(last.distanceFromIdentity!.toPrecision(4))));
    await shot(page, 'mixers-dark.png');

    // M − M₀ at the first snapshot is all zeros: every cell is the neutral colour
    await page.locator('vscode-checkbox.diff').click();
    await page.locator('.scrubber .step').fill('0');
    await page.waitForFunction(() => document.querySelector('canvas.heatmap')?.getAttribute('data-step') === '0');
    for (const [a, b] of [[0, 0], [3, 5], [7, 7]] as const) near(await pixel(a, b), neutral, `M − M₀ at step 0, cell (${a}, ${b})`);

    // scrub and play: the slider walks the snapshots, Play runs to the newest
    await page.locator('.scrubber .step').fill('3');
    await page.waitForFunction((s) => document.querySelector('canvas.heatmap')?.getAttribute('data-step') === String(s), list[3]!.step);
    await page.locator('vscode-button.play').click();
    await page.waitForFunction((s) => document.querySelector('canvas.heatmap')?.getAttribute('data-step') === String(s), last.step, { timeout: 8000 });
    assert.equal(await page.locator('vscode-button.play').innerText(), 'Play');

    // live: a new snapshot moves a panel that follows the newest
    const next: MixerSnapshot = { ...last, step: last.step + 25, values: last.values.map((x) => x! * 1.01) };
    await send(page, [{ type: 'mixers', runId: fixture.runId, snapshots: [next] }]);
    await page.waitForFunction((s) => document.querySelector('canvas.heatmap')?.getAttribute('data-step') === String(s), next.step);

    // small multiples: every module at once
    await page.evaluate(() => {
      const select = document.querySelector<HTMLElement & { value: string }>('vscode-single-select.view')!;
      select.value = 'grid';
      select.dispatchEvent(new Event('change'));
    });
    assert.equal(await page.locator('.mixer-grid canvas[data-module]').count(), new Set(snapshots.map((s) => s.module)).size);
    await shot(page, 'mixers-grid-dark.png');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('100k points render, decimated for display, with every point kept', async () => {
    const { page, errors } = await open('dark');
    const n = 100_000;
    await page.evaluate((count) => {
      // (no named functions in here: tsx would wrap them in a helper the page does not have)
      const records = [];
      let seed = 1;
      for (let step = 1; step <= count; step++) {
        seed = (seed * 16807) % 2147483647;
        const noise = (seed / 2147483647 - 0.5) * 0.2;
        records.push({ step, kind: 'train', loss: 0.5 + 2 * Math.exp(-step / 20000) + noise, lr: 1e-4, wall_s: step * 0.01 });
      }
      // one spike, which decimation must keep
      records[54321]!.loss = 9;
      const state = { runId: 'long-run', name: 'long-run', phase: 'training', step: count, total: 2 * count, backend: 'webgpu', device: 'NVIDIA H100', startedAt: Date.now() - 1000 * 1000 };
      window.postMessage({ type: 'runState', state }, '*');
      window.postMessage({ type: 'metrics', runId: 'long-run', records }, '*');
    }, n);
    await page.waitForFunction((total) => document.querySelector('[data-chart="train/loss"]')?.getAttribute('data-points-total') === String(total), 2 * n, {
      timeout: 20_000,
    });
    const loss = await chart(page, 'train/loss');
    assert.equal(loss.total, 2 * n, 'raw and smoothed: every point is kept');
    assert.ok(loss.drawn < n / 10, `drawn ${loss.drawn} points of ${n}: decimated`);
    assert.ok(loss.drawn > 500, `drawn ${loss.drawn}: still a few per pixel column`);
    assert.equal(loss.data[0]!.length, loss.drawn);
    assert.equal(Math.max(...loss.data[1]!.map((v) => v ?? -Infinity)), 9, 'the spike survives decimation');
    assert.equal(loss.data[0]![0], 1);
    assert.equal(loss.data[0]!.at(-1), n);
    await shot(page, 'training-100k-dark.png');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('colours come from the theme: light and dark differ, and a theme switch redraws', async () => {
    const dark = await open('dark');
    const light = await open('light');
    await feed(dark.page);
    await feed(light.page);
    const blue = (theme: ThemeName): string => {
      const { r, g, b } = hexToRgb(THEMES[theme].vars['--vscode-charts-blue']!);
      return `rgb(${r}, ${g}, ${b})`;
    };
    assert.equal((await chart(dark.page, 'train/loss')).strokes[1], blue('dark'));
    assert.equal((await chart(light.page, 'train/loss')).strokes[1], blue('light'));
    assert.equal(await light.page.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(255, 255, 255)');
    await shot(light.page, 'training-light.png');
    await tab(light.page, 'Mixers');
    await light.page.waitForSelector('canvas.heatmap[data-r="8"]');
    await shot(light.page, 'mixers-light.png');

    // VS Code switches theme under a live page: the charts follow
    await dark.page.evaluate(() => (window as unknown as PageGlobals).__setTheme('light'));
    await dark.page.waitForFunction(
      (expected) => (document.querySelector('[data-chart="train/loss"]') as ChartElement).uplot.series[2]!.stroke(null, 2) === expected,
      blue('light'),
    );
    assert.deepEqual(dark.errors, []);
    assert.deepEqual(light.errors, []);
    await dark.page.close();
    await light.page.close();
  });

  test('Compare overlays runs with a legend of final metrics; CSV and PNG exports post valid payloads', async () => {
    const { page, errors } = await open('dark');
    await feed(page);
    await tab(page, 'Compare');
    await page.waitForFunction(() => document.querySelectorAll('.compare-legend tbody tr').length === 2);
    await page.waitForFunction(() => document.querySelector('[data-chart="compare"]')?.getAttribute('data-series') === '4');
    const compare = await chart(page, 'compare');
    const [a, b] = [baselineRun!.name, finalState.type === 'runState' ? finalState.state.name : ''];
    assert.deepEqual(compare.labels, ['step', `${a} (raw)`, a, `${b} (raw)`, b]);
    assert.notEqual(compare.strokes[1], compare.strokes[3], 'one colour per run');
    const rows = await page.locator('.compare-legend tbody tr').allInnerTexts();
    assert.ok(rows[0]!.includes(`${a}\tlora\t${fixture.total}\t`), rows[0]);
    assert.ok(rows[1]!.includes(`${b}\tmoslora\t${fixture.total}\t`), rows[1]);

    // wall-time x and log y
    await page.evaluate(() => {
      const select = document.querySelector<HTMLElement & { value: string }>('vscode-single-select.x-mode')!;
      select.value = 'wall';
      select.dispatchEvent(new Event('change'));
    });
    await page.locator('vscode-checkbox.log-y').click();
    await page.waitForFunction(() => (document.querySelector('[data-chart="compare"]') as ChartElement).uplot.series[0]!.label === 'time');
    await page.waitForTimeout(100);
    await shot(page, 'compare-dark.png');

    await page.locator('vscode-button.export-csv').click();
    await page.locator('vscode-button.export-png').click();
    await page.waitForFunction(() => (window as unknown as PageGlobals).__posted.some((m) => (m as { type: string }).type === 'exportPng'));
    const messages = await posted(page);
    const csv = messages.find((m) => m.type === 'exportCsv');
    assert.ok(csv?.type === 'exportCsv');
    const lines = csv.csv.trimEnd().split('\r\n');
    const recorded = fixture.messages.flatMap((m) => (m.type === 'metrics' ? m.records : m.type === 'runs' ? m.runs.flatMap((r) => r.metrics ?? []) : []));
    const metrics = [...new Set(recorded.flatMap((r) => Object.keys(r)))].filter((k) => !['step', 'kind', 'wall_s'].includes(k)).sort();
    assert.equal(lines[0], ['run', 'step', 'kind', 'wall_s', ...metrics].join(','));
    const listed = fixture.messages.find((m) => m.type === 'runs');
    const baseline = listed?.type === 'runs' ? listed.runs[0]!.metrics!.length : 0;
    const live = fixture.messages.flatMap((m) => (m.type === 'metrics' ? m.records : [])).length;
    assert.equal(lines.length, 1 + baseline + live, 'every record of both runs');
    const png = messages.find((m) => m.type === 'exportPng');
    assert.ok(png?.type === 'exportPng');
    assert.equal(png.fileName, 'moslora-compare-train_loss.png');
    writeFileSync(join(ARTIFACTS, 'compare-export.png'), Buffer.from(png.dataUrl.slice('data:image/png;base64,'.length), 'base64'));
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a reloaded panel restores its tab, smoothing and data before the extension resends', async () => {
    const { page, errors } = await open('dark');
    await feed(page);
    await page.locator('.smoothing').fill('0.9');
    await tab(page, 'Compare');
    await page.waitForFunction(() => sessionStorage.getItem('vscodeState')?.includes('"tab":"compare"') && sessionStorage.getItem('vscodeState')?.includes('"smoothing":0.9'));
    await page.reload();
    await page.waitForSelector('body[data-ready="true"]');
    assert.equal(await page.locator('.smoothing').inputValue(), '0.9');
    assert.equal(await page.evaluate(() => document.querySelector<HTMLElement & { selectedIndex: number }>('vscode-tabs')!.selectedIndex), 1);
    await page.waitForFunction(() => document.querySelectorAll('.compare-legend tbody tr').length === 2);
    await tab(page, 'Training');
    await page.waitForFunction((n) => document.querySelector('[data-chart="train/loss"]')?.getAttribute('data-points-drawn') === String(n), trainRecords.length);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
