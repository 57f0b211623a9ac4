// The built training panel in headless Chromium, under the CSP VS Code would give it, fed the
// messages the extension sends (test/fixtures/webview/run.json). Screenshots go to
// test-artifacts/browser/ (look at them).
//   npm run test:browser       (builds first; needs /usr/bin/chromium: apt-get install chromium)
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { diverging } from '../../webview/heatmap/colormap';
import { paletteTitles } from '../../protocol/commands';
import { PROTOCOL_VERSION, parseWebviewMessage, type ExtensionMessage, type RunListing, type RunState, type WebviewMessage } from '../../protocol/webview';
import { decodePng, inkBox } from '../helpers/png';
import { browserSkip, launchChromium, startHarness, type Harness } from './harness';
import { hexToRgb, THEMES, type ThemeName } from './themes';
import type { MetricRecord, MixerSnapshot } from '../../protocol/records';

const ROOT = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'browser');
const fixture = JSON.parse(readFileSync(join(ROOT, 'test', 'fixtures', 'webview', 'run.json'), 'utf8')) as {
  runId: string;
  total: number;
  messages: ExtensionMessage[];
};


/** The panel's width beside an editor in a 1600 px window of VS Code 1.100 (measured by the editor tests). */
const SIDE_BY_SIDE = { width: 626, height: 900 };

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

describe('training panel in Chromium', { skip: browserSkip }, () => {
  let browser: Browser;
  let harness: Harness;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    harness = await startHarness();
    browser = await launchChromium();
  });

  after(async () => {
    await browser?.close();
    await harness?.close();
  });

  /** A fresh page in a theme, loaded and ready, with console errors and CSP violations collected. */
  async function open(theme: ThemeName, viewport = { width: 1280, height: 1000 }): Promise<{ page: Page; errors: string[] }> {
    const page = await browser.newPage({ viewport, deviceScaleFactor: 1 });
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

  /** The recorded run, then the focus the extension sends when the job it started gets its run folder. */
  async function feed(page: Page): Promise<void> {
    await send(page, [...fixture.messages, { type: 'focus', runId: fixture.runId }]);
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
    assert.deepEqual((await posted(page))[0], { type: 'ready', protocol: PROTOCOL_VERSION });
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
    await page.waitForFunction(() => document.querySelector('.run-header .phase')?.textContent === 'training');
    assert.match(await page.locator('.run-header').innerText(), /ETA \d+:\d\d/);
    await stop.click();
    await stop.click({ force: true });
    await page.waitForTimeout(50);
    const stops = (await posted(page)).filter((m) => m.type === 'stop');
    assert.deepEqual(stops, [{ type: 'stop', runId: fixture.runId }]);
    assert.equal(await stop.innerText(), 'Stopping…');
    await send(page, [{ type: 'runState', state: { ...live, startedAt, phase: 'stopped', step: 201, reason: 'Stopped by the user at step 201; the adapter was saved.', finishedAt: Date.now() } }]);
    await page.waitForFunction(() => document.querySelector('.run-header .phase')?.textContent === 'stopped');
    assert.equal(await stop.isHidden(), true, 'nothing to stop');
    assert.match(await page.locator('.banner').innerText(), /Stopped by the user at step 201/);
    // the run list says it can resume (a checkpoint, not training): Resume posts exactly once
    const listed = fixture.messages.find((m) => m.type === 'runs');
    assert.ok(listed?.type === 'runs');
    await send(page, [{ type: 'runs', runs: [...listed.runs, { runId: fixture.runId, name: fixture.runId, method: 'moslora', resumable: true }] }]);
    const resume = page.locator('.run-header vscode-button.resume');
    await resume.waitFor();
    await resume.click();
    await resume.click({ force: true });
    await page.waitForTimeout(50);
    assert.deepEqual((await posted(page)).filter((m) => m.type === 'resume'), [{ type: 'resume', runId: fixture.runId }]);
    assert.equal(await resume.innerText(), 'Resuming…');
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

  // -------------------------------------------------------------------------------------------
  // The run pickers, the queue, empty states, the default width, exports, Compare's settings;
  // each state photographed at the width the panel has beside an editor, dark and high contrast.

  const liveState = (finalState.type === 'runState' ? finalState.state : undefined)!;
  const moslora: RunListing = { runId: fixture.runId, name: fixture.runId, method: 'moslora', state: liveState };

  /** The run list as the extension sends it once both runs are on disk: newest first. */
  async function listBoth(page: Page, extra: Partial<Record<'lora' | 'moslora', Partial<RunListing>>> = {}): Promise<void> {
    await send(page, [{ type: 'runs', runs: [{ ...moslora, ...extra.moslora }, { ...baselineRun!, ...extra.lora }] }]);
  }

  /** A screenshot in the dark theme, then the same page switched to high contrast, then back. */
  async function shots(page: Page, name: string): Promise<void> {
    await page.waitForTimeout(150);
    await shot(page, `${name}-dark.png`);
    await page.evaluate(() => (window as unknown as PageGlobals).__setTheme('highContrast'));
    await page.waitForFunction(() => document.body.classList.contains('vscode-high-contrast'));
    await page.waitForTimeout(250);
    await shot(page, `${name}-hc.png`);
    await page.evaluate(() => (window as unknown as PageGlobals).__setTheme('dark'));
    await page.waitForTimeout(150);
  }

  async function pick(page: Page, tabName: 'training' | 'mixers', runId: string): Promise<void> {
    await page.evaluate(
      ([t, id]) => {
        const select = document.querySelector<HTMLElement & { value: string }>(`.tab-${t} vscode-single-select.run-select`)!;
        select.value = id!;
        select.dispatchEvent(new Event('change'));
      },
      [tabName, runId],
    );
  }

  async function pickerValue(page: Page, tabName: 'training' | 'mixers'): Promise<string> {
    return page.evaluate((t) => document.querySelector<HTMLElement & { value: string }>(`.tab-${t} vscode-single-select.run-select`)!.value, tabName);
  }

  test('the run pickers: every run newest first with method, state and loss; both tabs show the run picked; a LoRA run offers the runs with mixers', async () => {
    const { page, errors } = await open('dark', SIDE_BY_SIDE);
    await feed(page);
    await listBoth(page);
    const lastLoss = (records: readonly MetricRecord[]) => records.filter((r) => r.kind === 'train').at(-1)!.loss as number;
    const format = (v: number) => String(Number(v.toPrecision(4)));
    // the fixture's own listing has the same two runs oldest first: wait for the newer listing to be drawn
    await page.waitForFunction((first) => document.querySelector('.tab-training vscode-single-select.run-select vscode-option')?.getAttribute('value') === first, fixture.runId);
    const options = await page.locator('.tab-training vscode-single-select.run-select vscode-option').allInnerTexts();
    assert.deepEqual(options, [
      `${fixture.runId} · moslora · done · loss ${format(lastLoss(trainRecords))}`,
      `${baselineRun!.name} · lora · done · loss ${format(lastLoss(baselineRun!.metrics!))}`,
    ]);
    assert.equal(await pickerValue(page, 'training'), fixture.runId);
    await shots(page, 'picker-training');

    // the baseline on the Training tab: its header and its curve
    await pick(page, 'training', baselineRun!.runId);
    await page.waitForFunction((name) => document.querySelector('.run-header .run-name')?.textContent === name, baselineRun!.name);
    const baselineTrain = baselineRun!.metrics!.filter((r) => r.kind === 'train');
    // both runs log as many steps, the first ones alike (B starts at zero): the chart is the
    // baseline's once its last loss is drawn
    await page.waitForFunction(
      ([i, loss]) => (document.querySelector('[data-chart="train/loss"]') as ChartElement | null)?.uplot?.data[1]?.[i!] === loss,
      [baselineTrain.length - 1, baselineTrain.at(-1)!.loss as number],
    );
    await page.waitForFunction((n) => document.querySelector('[data-chart="train/loss"]')?.getAttribute('data-points-drawn') === String(n), baselineTrain.length);
    assert.deepEqual((await chart(page, 'train/loss')).data[1], baselineTrain.map((r) => r.loss));
    assert.match(await page.locator('.run-header').innerText(), new RegExp(`loss ${format(lastLoss(baselineRun!.metrics!)).replace('.', '\\.')}`), 'the header gives the last logged loss, raw');

    // the Mixers tab shows the same run: a LoRA run has no mixer, and says which runs have one
    await tab(page, 'Mixers');
    assert.equal(await pickerValue(page, 'mixers'), baselineRun!.runId);
    await page.locator('.no-mixer', { hasText: `${baselineRun!.name} is a lora run: it learns no mixer` }).waitFor();
    assert.deepEqual(await page.locator('.mixer-runs vscode-button').evaluateAll((buttons) => buttons.map((b) => (b as HTMLElement).dataset.runId)), [fixture.runId]);
    assert.match((await page.locator('.tab-mixers vscode-single-select.run-select vscode-option').allInnerTexts())[1]!, /\(no mixer\)$/);
    await shots(page, 'mixers-lora');
    await page.locator('.mixer-runs vscode-button').click();
    await page.waitForSelector('canvas.heatmap[data-r="8"]');
    assert.equal(await pickerValue(page, 'mixers'), fixture.runId);
    assert.equal(await pickerValue(page, 'training'), fixture.runId, 'one choice for both tabs');
    await shots(page, 'mixers-picked');
    // the records of each run shown were asked for once, and only where the list did not carry them
    const requests = (await posted(page)).filter((m) => m.type === 'requestRun');
    assert.deepEqual(requests, [{ type: 'requestRun', runId: fixture.runId }]);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a queued job is shown with what it waits for, and its Cancel posts exactly cancelQueued', async () => {
    const { page, errors } = await open('dark', SIDE_BY_SIDE);
    await feed(page);
    const { finishedAt: _finished, ...training } = liveState;
    await send(page, [
      { type: 'runState', state: { ...training, phase: 'training', step: 40, startedAt: Date.now() - 30_000 } },
      { type: 'queue', jobs: [{ jobKey: '1:2', name: 'tiny', reason: `waits for ${fixture.runId}: one job trains at a time` }] },
    ]);
    const item = page.locator('.queue .queued-job');
    await item.waitFor();
    assert.equal((await item.innerText()).replace(/\s+/g, ' ').trim(), `QUEUED tiny waits for ${fixture.runId}: one job trains at a time Cancel`);
    assert.equal(await page.locator('.run-header .phase').innerText(), 'TRAINING', 'the run header keeps its own state');
    await shots(page, 'queued');
    await item.locator('vscode-button.cancel-queued').click();
    await page.waitForTimeout(50);
    assert.deepEqual((await posted(page)).filter((m) => m.type === 'cancelQueued'), [{ type: 'cancelQueued', jobKey: '1:2' }]);
    await send(page, [{ type: 'queue', jobs: [] }]);
    await item.waitFor({ state: 'detached' });
    assert.equal(await page.locator('.queue').isHidden(), true);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('empty states: the real command to run, no Compare chart without runs, and the first point drawn', async () => {
    const { page, errors } = await open('dark', SIDE_BY_SIDE);
    const empty = await page.locator('.tab-training .empty').innerText();
    assert.ok(empty.includes(`"${paletteTitles.startTraining}"`), empty);
    await shots(page, 'empty-training');
    await tab(page, 'Compare');
    assert.match(await page.locator('.compare > .empty').innerText(), new RegExp(`No runs to compare yet.*"${paletteTitles.startTraining}"`));
    assert.equal(await page.locator('.compare-body').isHidden(), true, 'no chart, no table, no controls');
    assert.equal(await page.locator('[data-chart="compare"]').isVisible(), false);
    await shots(page, 'empty-compare');
    await tab(page, 'Mixers');
    assert.match(await page.locator('.no-mixer .empty').innerText(), /No run yet/);
    await tab(page, 'Training');

    // a run that has started and logged nothing: it says what comes; then its first point shows
    const state: RunState = { runId: 'young', name: 'young', phase: 'training', step: 0, total: 60, backend: 'wasm', device: 'CPU', startedAt: Date.now() };
    await send(page, [{ type: 'runState', state }]);
    await page.locator('.waiting').waitFor();
    await send(page, [{ type: 'metrics', runId: 'young', records: [{ step: 1, kind: 'train', loss: 6.5, wall_s: 0.3 }] }]);
    await page.waitForFunction(() => document.querySelector('[data-chart="train/loss"]')?.getAttribute('data-points-drawn') === '1');
    assert.equal(await page.locator('.waiting').isHidden(), true);
    assert.match(await page.locator('.run-header').innerText(), /loss 6\.5/);
    const blue = hexToRgb(THEMES.dark.vars['--vscode-charts-blue']!);
    const drawn = await page.evaluate((c) => {
      const canvas = (document.querySelector('[data-chart="train/loss"]') as ChartElement & { uplot: { ctx: CanvasRenderingContext2D } }).uplot.ctx.canvas;
      const pixels = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
      let n = 0;
      for (let i = 0; i < pixels.length; i += 4) if (Math.abs(pixels[i]! - c.r) < 8 && Math.abs(pixels[i + 1]! - c.g) < 8 && Math.abs(pixels[i + 2]! - c.b) < 8 && pixels[i + 3]! > 200) n++;
      return n;
    }, blue);
    assert.ok(drawn >= 9, `the one point is drawn (${drawn} pixels of the loss colour)`);
    await shots(page, 'first-point');
    assert.deepEqual(errors, []);
    await page.close();
  });

  /** Mixer snapshots of the examples' targets: 7 module kinds in each of 4 layers, r = 8. */
  function sevenModules(): MixerSnapshot[] {
    const kinds = ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj', 'self_attn.o_proj', 'mlp.gate_proj', 'mlp.up_proj', 'mlp.down_proj'];
    return [0, 10].flatMap((step) =>
      [0, 1, 2, 3].flatMap((layer) =>
        kinds.map((kind, k) => ({
          step,
          module: `model.layers.${layer}.${kind}`,
          r: 8,
          values: Array.from({ length: 64 }, (_, i) => (i % 9 === 0 ? 1 : 0) + Math.sin(i + k + layer + step) * 0.2),
          distanceFromIdentity: 0.5 + step / 100,
          singularValues: [1.2, 1.1, 1, 1, 0.9, 0.9, 0.8, 0.7],
        })),
      ),
    );
  }

  test('at the default width: every module of the grid shows, its tooltip stays inside, the Compare table is not cut, whole step ticks, titled axes', async () => {
    const { page, errors } = await open('dark', SIDE_BY_SIDE);
    await feed(page);
    await listBoth(page);
    const width = SIDE_BY_SIDE.width;

    // every chart has axis titles, and a step axis has whole ticks
    const axes = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('.tab-training [data-chart]')]
        .filter((el) => !el.hidden)
        .map((el) => {
          const u = (el as unknown as { uplot: { axes: { label?: string; _splits?: number[] }[] } }).uplot;
          return { chart: el.dataset.chart, x: u.axes[0]!.label, y: u.axes[1]!.label, splits: u.axes[0]!._splits ?? [] };
        }),
    );
    assert.ok(axes.length >= 5, JSON.stringify(axes));
    for (const a of axes) {
      assert.equal(a.x, 'step', `${a.chart}: x title`);
      assert.ok(a.y && a.y.length > 1, `${a.chart}: y title`);
      assert.ok(a.splits.length > 1 && a.splits.every((v) => Number.isInteger(v)), `${a.chart}: whole step ticks ${a.splits.join(', ')}`);
    }
    // a young run of 3 steps still has whole ticks (uPlot would put them at 0.5 steps)
    const young: RunState = { runId: 'young', name: 'young', phase: 'training', step: 3, total: 60, backend: 'wasm', device: 'CPU', startedAt: Date.now() };
    await send(page, [
      { type: 'runState', state: young },
      { type: 'metrics', runId: 'young', records: [1, 2, 3].map((step) => ({ step, kind: 'train', loss: 6 - step / 10, wall_s: step / 10 })) },
      { type: 'focus', runId: 'young' },
    ]);
    await page.waitForFunction(() => document.querySelector('[data-chart="train/loss"]')?.getAttribute('data-points-drawn') === '3');
    const splits = await page.evaluate(() => (document.querySelector('[data-chart="train/loss"]') as unknown as { uplot: { axes: { _splits: number[] }[] } }).uplot.axes[0]!._splits);
    assert.ok(splits.every((v) => Number.isInteger(v)), `whole ticks for 3 steps: ${splits.join(', ')}`);
    await shots(page, 'young-run');
    await send(page, [{ type: 'focus', runId: fixture.runId }]);

    // the all-modules grid of 7 module kinds × 4 layers fits the width, with its tooltip
    await send(page, [{ type: 'mixers', runId: fixture.runId, snapshots: sevenModules(), replace: true }]);
    await tab(page, 'Mixers');
    await page.waitForSelector('canvas.heatmap[data-r="8"]');
    await page.evaluate(() => {
      const select = document.querySelector<HTMLElement & { value: string }>('vscode-single-select.view')!;
      select.value = 'grid';
      select.dispatchEvent(new Event('change'));
    });
    await page.waitForFunction(() => document.querySelectorAll('.mixer-grid canvas[data-module]').length === 28);
    await page.waitForTimeout(100);
    const boxes = await page.locator('.mixer-grid canvas[data-module]').evaluateAll((canvases) => canvases.map((c) => c.getBoundingClientRect().right));
    assert.ok(Math.max(...boxes) <= width, `every heatmap within the ${width} px panel: the rightmost ends at ${Math.max(...boxes)}`);
    // the rightmost heatmap of the top row: its tooltip would run past the panel's edge
    const rightmost = await page.locator('.mixer-grid canvas[data-module^="model.layers.0."]').evaluateAll((canvases) =>
      canvases.reduce((a, c) => (c.getBoundingClientRect().right > a.getBoundingClientRect().right ? c : a)).getAttribute('data-module'),
    );
    const box = (await page.locator(`.mixer-grid canvas[data-module="${rightmost}"]`).boundingBox())!;
    await page.mouse.move(box.x + box.width - 2, box.y + 2);
    const tooltip = page.locator('.mixer-tooltip');
    await tooltip.waitFor();
    const tip = (await tooltip.boundingBox())!;
    assert.ok(tip.x >= 0 && tip.x + tip.width <= width, `the tooltip within the panel: ${tip.x} … ${tip.x + tip.width}`);
    await shots(page, 'mixers-grid-default-width');
    await page.mouse.move(0, 0);

    // Compare's table (the two runs listed and the young one) fits the panel, its last column whole
    await tab(page, 'Compare');
    await page.waitForFunction(() => document.querySelectorAll('.compare-legend tbody tr').length === 3);
    const table = await page.evaluate(() => {
      const scroller = document.querySelector<HTMLElement>('.compare .table-scroll')!;
      const cells = document.querySelectorAll('.compare-legend tbody tr:first-child td');
      return { scrollWidth: scroller.scrollWidth, clientWidth: scroller.clientWidth, lastRight: cells[cells.length - 1]!.getBoundingClientRect().right };
    });
    assert.ok(table.scrollWidth <= table.clientWidth + 1 && table.lastRight <= width, `the table is ${table.scrollWidth} px wide in ${table.clientWidth} px; its last column ends at ${table.lastRight}`);
    const compareAxes = await page.evaluate(() => (document.querySelector('[data-chart="compare"]') as unknown as { uplot: { axes: { label: string }[] } }).uplot.axes.map((a) => a.label));
    assert.deepEqual(compareAxes, ['step', 'train loss']);
    await shots(page, 'compare-default-width');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('a learning-rate axis across 1e-3 reads in one form: every tick in exponent form, or 0', async () => {
    const { page, errors } = await open('dark', SIDE_BY_SIDE);
    await feed(page);
    const rising: RunState = { runId: 'rising-lr', name: 'rising-lr', phase: 'done', step: 60, total: 60, backend: 'wasm', device: 'CPU', startedAt: null };
    const records: MetricRecord[] = Array.from({ length: 60 }, (_, i) => ({ step: i + 1, kind: 'train', loss: 3 - i / 40, lr: (2e-3 * (i + 1)) / 60, wall_s: i / 5 }));
    await send(page, [{ type: 'runState', state: rising }, { type: 'metrics', runId: 'rising-lr', records, replace: true }, { type: 'focus', runId: 'rising-lr' }]);
    await page.waitForFunction(() => document.querySelector('[data-chart="train/lr"]')?.getAttribute('data-points-drawn') === '60');
    await page.waitForTimeout(100);
    const ticks = await page.evaluate(() => (document.querySelector('[data-chart="train/lr"]') as unknown as { uplot: { axes: { _values: string[] }[] } }).uplot.axes[1]!._values);
    const values = ticks.map(Number);
    assert.ok(values.some((v) => v > 0 && v < 1e-3) && values.some((v) => v >= 1e-3), `ticks on both sides of 1e-3: ${ticks.join(', ')}`);
    assert.ok(ticks.every((v) => v === '0' || /^\d\.\d+e-\d+$/.test(v)), `the learning-rate axis in one form: ${ticks.join(', ')}`);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('PNG exports are as wide as their legend and keep every axis label whole', async () => {
    const { page, errors } = await open('dark', SIDE_BY_SIDE);
    await feed(page);
    await listBoth(page);
    // a run at a small learning rate: its axis reads 3.0e-4 … 0, the labels that lost their first digit
    const small: RunState = { runId: 'small-lr', name: 'small-lr', phase: 'done', step: 60, total: 60, backend: 'wasm', device: 'CPU', startedAt: null };
    const records: MetricRecord[] = Array.from({ length: 60 }, (_, i) => ({ step: i + 1, kind: 'train', loss: 3 - i / 40, lr: 3e-4 * Math.min(1, (i + 1) / 6) * (1 - i / 60), wall_s: i / 5 }));
    await send(page, [{ type: 'runState', state: small }, { type: 'metrics', runId: 'small-lr', records, replace: true }, { type: 'focus', runId: 'small-lr' }]);
    await page.waitForFunction(() => document.querySelector('[data-chart="train/lr"]')?.getAttribute('data-points-drawn') === '60');
    await page.waitForTimeout(100);
    // a y axis as wide as its widest label: the learning rate's "3e-3"-like labels are not cut
    const fits = await page.evaluate(() =>
      [...document.querySelectorAll<HTMLElement>('.tab-training [data-chart]')]
        .filter((el) => !el.hidden)
        .map((el) => {
          const u = (el as unknown as { uplot: { ctx: CanvasRenderingContext2D; axes: { _size: number; _values: string[]; font: [string]; ticks: { size: number }; gap: number }[] } }).uplot;
          const axis = u.axes[1]!;
          u.ctx.save();
          u.ctx.font = axis.font[0];
          const widest = Math.max(...axis._values.map((v) => u.ctx.measureText(v).width)) / devicePixelRatio;
          u.ctx.restore();
          return { chart: el.dataset.chart, size: axis._size, needed: widest + axis.ticks.size + axis.gap, values: axis._values };
        }),
    );
    for (const f of fits) assert.ok(f.size >= f.needed, `${f.chart}: y axis ${f.size} px for labels needing ${f.needed.toFixed(1)} px (${f.values.join(', ')})`);

    const exported = async (tabName: 'Training' | 'Compare', file: string): Promise<void> => {
      await tab(page, tabName);
      const before = (await posted(page)).filter((m) => m.type === 'exportPng').length;
      await page.locator('vscode-button.export-png').click();
      await page.waitForFunction((n) => (window as unknown as PageGlobals).__posted.filter((m) => (m as { type: string }).type === 'exportPng').length > n, before);
      const png = (await posted(page)).filter((m) => m.type === 'exportPng').at(-1)!;
      assert.ok(png.type === 'exportPng');
      const bytes = Buffer.from(png.dataUrl.slice('data:image/png;base64,'.length), 'base64');
      writeFileSync(join(ARTIFACTS, file), bytes);
      const image = decodePng(bytes);
      const ink = inkBox(image)!;
      // a 12 px margin all round; text cut at an edge would reach it
      assert.ok(image.width - 1 - ink.right >= 6, `${file}: ink reaches column ${ink.right} of ${image.width}`);
      assert.ok(ink.left >= 6, `${file}: ink from column ${ink.left}`);
      assert.ok(image.height - 1 - ink.bottom >= 6, `${file}: ink reaches row ${ink.bottom} of ${image.height}`);
    };
    await exported('Compare', 'compare-export-default-width.png');
    await exported('Training', 'training-export-default-width.png');
    assert.deepEqual(errors, []);
    await page.close();
  });

  test("Compare shows the settings that differ; rename and delete post their messages, never for a training run; a removed run leaves the lists", async () => {
    const { page, errors } = await open('dark', SIDE_BY_SIDE);
    await feed(page);
    await listBoth(page, {
      moslora: { hyperparameters: { method: 'moslora', r: 8, 'training.learning_rate': 0.003, mixer_init: 'kaiming', seed: 42 } },
      lora: { hyperparameters: { method: 'lora', r: 8, 'training.learning_rate': 0.003, seed: 42 } },
    });
    await tab(page, 'Compare');
    await page.waitForFunction(() => document.querySelectorAll('.compare-hyper tbody tr').length === 2);
    const rows = await page.locator('.compare-hyper tbody tr').evaluateAll((trs) => trs.map((tr) => [...tr.children].map((c) => (c as HTMLElement).innerText.trim())));
    assert.deepEqual(rows, [
      ['method', 'moslora', 'lora'],
      ['mixer_init', 'kaiming', '–'],
    ]);
    assert.match(await page.locator('.hyper-note').innerText(), /2 of their config.yaml's settings differ/);
    await shots(page, 'compare-hyperparameters');

    await page.locator(`.compare-legend tbody tr[data-run-id="${baselineRun!.runId}"] button.rename`).click();
    await page.locator(`.compare-legend tbody tr[data-run-id="${baselineRun!.runId}"] button.delete`).click();
    await page.waitForTimeout(50);
    assert.deepEqual(
      (await posted(page)).filter((m) => m.type === 'renameRun' || m.type === 'deleteRun'),
      [
        { type: 'renameRun', runId: baselineRun!.runId },
        { type: 'deleteRun', runId: baselineRun!.runId },
      ],
    );
    // a run that trains: its buttons are off
    const { finishedAt: _finished, ...training } = liveState;
    await send(page, [{ type: 'runState', state: { ...training, phase: 'training' } }]);
    await page.waitForFunction((id) => document.querySelector(`.compare-legend tbody tr[data-run-id="${id}"] button.delete`)?.hasAttribute('disabled'), fixture.runId);

    // the extension deleted (or renamed) the baseline: it leaves Compare and the pickers
    await send(page, [{ type: 'runRemoved', runId: baselineRun!.runId }, { type: 'runs', runs: [moslora] }]);
    await page.waitForFunction(() => document.querySelectorAll('.compare-legend tbody tr').length === 1);
    assert.equal(await page.locator('.tab-training vscode-single-select.run-select vscode-option').count(), 1);
    assert.equal(await page.locator('.compare-hyper tbody tr').count(), 0);
    assert.deepEqual(errors, []);
    await page.close();
  });

  test('resizing the panel raises no error: the charts and heatmaps redraw on the next frame', async () => {
    const { page, errors } = await open('dark', SIDE_BY_SIDE);
    await page.evaluate(() => {
      const w = window as unknown as { __errorEvents: string[] };
      w.__errorEvents = [];
      window.addEventListener('error', (e) => w.__errorEvents.push(e.message));
    });
    await feed(page);
    for (const name of ['Training', 'Mixers', 'Compare'] as const) {
      await tab(page, name);
      for (const w of [626, 480, 900, 626]) {
        await page.setViewportSize({ width: w, height: 900 });
        await page.waitForTimeout(80);
      }
    }
    assert.deepEqual(await page.evaluate(() => (window as unknown as { __errorEvents: string[] }).__errorEvents), []);
    assert.deepEqual((await posted(page)).filter((m) => m.type === 'error'), []);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
