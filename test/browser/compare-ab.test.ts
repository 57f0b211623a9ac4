// Compare draws an A/B's runs (listed with their A/B, method and seed) as one mean line with a
// min–max band per method, a plain run beside them as itself; "Show A/B runs as single runs"
// goes back to a line per run, and "Open A/B Report" asks the extension for the report.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { parseWebviewMessage, type ExtensionMessage, type RunListing } from '../../protocol/webview';
import type { MetricRecord } from '../../protocol/records';
import { decodePng } from '../helpers/png';
import { browserSkip, launchChromium, startHarness, type Harness } from './harness';

const ROOT = join(import.meta.dirname, '..', '..');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'browser');


interface ChartElement extends HTMLElement {
  uplot: { data: ArrayLike<number | null | undefined>[]; series: { label: string }[]; bands?: { series: [number, number] }[] };
}

const losses = (values: number[]): MetricRecord[] => values.map((loss, i) => ({ step: i + 1, kind: 'train', loss, wall_s: i + 1 }));
/** Three train losses, then an evaluation at step 3 with this accuracy. */
const run = (values: number[], accuracy: number): MetricRecord[] => [...losses(values), { step: 3, kind: 'eval', eval_loss: values[2]! + 0.5, accuracy, wall_s: 3.5 }];

/** Two methods × two seeds of the A/B "tiny", and a run of no A/B. */
const RUNS: RunListing[] = [
  { runId: 'r-l0', name: 'lora-seed0', method: 'lora', ab: { name: 'tiny', method: 'lora', seed: 0 }, metrics: run([4, 3, 2], 0.5) },
  { runId: 'r-l1', name: 'lora-seed1', method: 'lora', ab: { name: 'tiny', method: 'lora', seed: 1 }, metrics: run([6, 5, 2], 0.7) },
  { runId: 'r-m0', name: 'moslora-seed0', method: 'moslora', ab: { name: 'tiny', method: 'moslora', seed: 0 }, metrics: run([3, 2, 1], 0.8) },
  { runId: 'r-m1', name: 'moslora-seed1', method: 'moslora', ab: { name: 'tiny', method: 'moslora', seed: 1 }, metrics: run([5, 2, 1.5], 0.8) },
  { runId: 'r-plain', name: 'plain', method: 'lora', metrics: losses([9, 8, 7]) },
];

describe('Compare groups an A/B in Chromium', { skip: browserSkip }, () => {
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

  async function chart(page: Page): Promise<{ labels: string[]; data: (number | null)[][]; bands: [number, number][] }> {
    return page.evaluate(() => {
      const u = document.querySelector<ChartElement>('[data-chart="compare"]')!.uplot;
      return {
        labels: u.series.map((s) => s.label),
        data: u.data.map((column) => Array.from(column, (v) => (v === undefined ? null : v))),
        bands: (u.bands ?? []).map((b) => b.series),
      };
    });
  }

  /** The legend table's rows: a method's summary row as "mean NAME", a run's as its name, each with its figures. */
  function table(page: Page): Promise<string[][]> {
    return page.$$eval('.compare-legend tbody tr', (rows) =>
      rows.map((row) => {
        const cells = [...row.querySelectorAll('td')].slice(1, 9).map((td) => td.textContent ?? '');
        return [row.classList.contains('ab-summary') ? `mean ${cells[0]}` : cells[0]!, cells[3]!, cells[4]!, cells[6]!];
      }),
    );
  }

  /** Exports the Compare chart as a PNG and gives its height: the legend below the chart has a line per line drawn. */
  async function exportedHeight(page: Page): Promise<number> {
    const count = () => page.evaluate(() => (window as unknown as { __posted: { type: string }[] }).__posted.filter((m) => m.type === 'exportPng').length);
    const before = await count();
    await page.locator('vscode-button.export-png').click();
    await page.waitForFunction((n) => (window as unknown as { __posted: { type: string }[] }).__posted.filter((m) => m.type === 'exportPng').length > n, before);
    const dataUrl = await page.evaluate(() => (window as unknown as { __posted: { type: string; dataUrl?: string }[] }).__posted.filter((m) => m.type === 'exportPng').at(-1)!.dataUrl!);
    return decodePng(Buffer.from(dataUrl.slice('data:image/png;base64,'.length), 'base64')).height;
  }

  test('one mean line with a band per method, single runs on request, and Open A/B Report', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 }, deviceScaleFactor: 1 });
    const errors: string[] = [];
    page.on('console', (m) => (m.type() === 'error' || m.type() === 'warning') && errors.push(`console ${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
    await page.goto(harness.url('dark'));
    await page.waitForSelector('body[data-ready="true"]');
    const messages: ExtensionMessage[] = [{ type: 'settings', smoothing: 0 }, { type: 'runs', runs: RUNS }, { type: 'focus', tab: 'compare' }];
    await page.evaluate((ms) => ms.forEach((m) => window.postMessage(m, '*')), messages);

    // 3 lines per method (highest, lowest, mean) and the plain run's line
    await page.waitForFunction(() => document.querySelector('[data-chart="compare"]')?.getAttribute('data-series') === '7');
    const grouped = await chart(page);
    const lora = 'lora (tiny, mean of 2 seeds)';
    const moslora = 'moslora (tiny, mean of 2 seeds)';
    assert.deepEqual(grouped.labels, ['step', `${lora} highest`, `${lora} lowest`, lora, `${moslora} highest`, `${moslora} lowest`, moslora, 'plain']);
    assert.deepEqual(grouped.data[0], [1, 2, 3]);
    assert.deepEqual(grouped.data.slice(1, 4), [[6, 5, 2], [4, 3, 2], [5, 4, 2]]);
    assert.deepEqual(grouped.data.slice(4, 7), [[5, 2, 1.5], [3, 2, 1], [4, 2, 1.25]]);
    assert.deepEqual(grouped.data[7], [9, 8, 7]);
    assert.deepEqual(grouped.bands, [[1, 2], [4, 5]], 'each method fills between its highest and lowest line');
    // the table: a row per method (final loss, best eval loss, accuracy as mean (lowest–highest)) above its runs
    assert.deepEqual(await table(page), [
      [`mean ${lora}`, '2', '2.5', '0.6 (0.5–0.7)'],
      ['lora-seed0', '2', '2.5', '0.5'],
      ['lora-seed1', '2', '2.5', '0.7'],
      [`mean ${moslora}`, '1.25 (1–1.5)', '1.75 (1.5–2)', '0.8'],
      ['moslora-seed0', '1', '1.5', '0.8'],
      ['moslora-seed1', '1.5', '2', '0.8'],
      ['plain', '7', '–', '–'],
    ]);
    await page.screenshot({ path: join(ARTIFACTS, 'compare-ab-grouped.png'), fullPage: true });
    const groupedHeight = await exportedHeight(page);

    await page.locator('.ab-controls vscode-checkbox.ab-single').click();
    await page.waitForFunction(() => document.querySelector('[data-chart="compare"]')?.getAttribute('data-series') === '5');
    const single = await chart(page);
    assert.deepEqual(single.labels, ['step', 'lora-seed0', 'lora-seed1', 'moslora-seed0', 'moslora-seed1', 'plain']);
    assert.deepEqual(single.bands, []);
    assert.deepEqual((await table(page)).map((row) => row[0]), ['lora-seed0', 'lora-seed1', 'moslora-seed0', 'moslora-seed1', 'plain'], 'single runs: no mean rows');
    // the exported legend: two methods and the plain run grouped, five runs single (18 px a line at this scale)
    assert.equal((await exportedHeight(page)) - groupedHeight, 2 * 18);

    await page.locator('.ab-controls .open-ab-report').click();
    const posted = await page.evaluate(() => (window as unknown as { __posted: unknown[] }).__posted);
    const opened = posted.map((m) => parseWebviewMessage(m)).filter((p) => p.ok && p.message.type === 'openAbReport');
    assert.deepEqual(opened.map((p) => (p.ok ? p.message : null)), [{ type: 'openAbReport', runId: 'r-l0' }]);
    assert.deepEqual(errors, []);
    await page.close();
  });
});
