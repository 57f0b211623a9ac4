// The packaged extension in a real VS Code: code-server 4.100.3 (VS Code 1.100.3) with the .vsix
// installed, driven in Chromium as a user would, in a workspace that is a copy of examples/ (no
// examples/ folder in it): New Adapter Config finds the model and the data; a config's planted
// mistake shows in the Problems panel with its quick fix; Start Training from the palette draws
// the loss while the status bar follows the job; Try Adapter prints its output; a second job
// waits in the queue and says so; a stopped run resumes from the panel and its curve continues;
// the run pickers of the Training and Mixers tabs; Compare's differing settings, rename, delete
// and a PNG export that is confirmed and holds its legend; a reload; a high-contrast theme.
// Screenshots go to test-artifacts/editor/ (look at them).
//   bash test/editor/setup.sh     installs code-server into .cache/code-server (once, ~1 min)
//   npm run test:editor           builds, then runs this file
// Locally a missing code-server skips this tier with the reason; under CI it must run.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, FrameLocator, Page } from 'playwright-core';
import { stringify, parse } from 'yaml';
import { configTemplate, examplePaths } from '../../extension/template';
import { parseConfigText } from '../../server/config/load';
import { decodePng, inkBox } from '../helpers/png';
import { browserMissing, launchChromium } from '../browser/harness';

const ROOT = join(import.meta.dirname, '..', '..');
const CODE_SERVER = join(ROOT, '.cache', 'code-server', 'node_modules', '.bin', 'code-server');
const ARTIFACTS = join(ROOT, 'test-artifacts', 'editor');
/** The template's run: 60 steps of the tiny model, about 12 s on 2 cores. */
const TOTAL_STEPS = 60;

const missing = !existsSync(CODE_SERVER)
  ? `code-server is not set up: run \`bash test/editor/setup.sh\` (installs it into .cache/code-server, about a minute)`
  : (browserMissing ??
    (!existsSync(join(ROOT, 'dist', 'trainer.js')) ? 'dist/ is not built: run `npm run build` first (npm run test:editor does)' : null));
if (missing && !process.env.CI) console.log(`# editor tests skipped: ${missing}`);
const skip = missing !== null && !process.env.CI ? missing : false;

interface Metric {
  step: number;
  kind: string;
}

describe('the packaged extension in VS Code (code-server)', { skip }, () => {
  let temp: string;
  let workspace: string;
  let userData: string;
  let codeServer: ChildProcess | undefined;
  let serverLog = '';
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];
  /** The run folders the tests made, oldest first: [finished, stopped then resumed]. */
  const runs: string[] = [];

  before(async () => {
    if (missing) throw new Error(missing);
    rmSync(ARTIFACTS, { recursive: true, force: true }); // no stale screenshots from an older run
    mkdirSync(ARTIFACTS, { recursive: true });
    temp = mkdtempSync(join(tmpdir(), 'moslora-editor-'));
    workspace = join(temp, 'workspace');
    userData = join(temp, 'user-data');
    const extensions = join(temp, 'extensions');

    // The workspace is a copy of examples/ (the tiny model, its task, the two example configs),
    // with no examples/ folder in it, and a config from the "New Adapter Config" template with
    // one planted mistake (a misspelt module the quick fix corrects).
    cpSync(join(ROOT, 'examples'), workspace, { recursive: true, filter: (src) => !src.includes(`${join(ROOT, 'examples')}/runs`) });
    assert.ok(!existsSync(join(workspace, 'examples')) && existsSync(join(workspace, 'tiny-model', 'config.json')));
    const config = configTemplate(examplePaths(workspace, workspace), 'example');
    assert.ok(config.includes('k_proj, v_proj'), 'the template targets k_proj');
    writeFileSync(join(workspace, 'tiny.moslora.yaml'), config.replace('k_proj, v_proj', 'k_prj, v_proj'));

    mkdirSync(join(userData, 'User'), { recursive: true });
    writeFileSync(
      join(userData, 'User', 'settings.json'),
      JSON.stringify({
        'security.workspace.trust.enabled': false,
        'workbench.startupEditor': 'none',
        'workbench.tips.enabled': false,
        'telemetry.telemetryLevel': 'off',
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'update.mode': 'none',
        'editor.codeLens': true,
      }),
    );

    // Package exactly what users install, and install it.
    const vsix = join(temp, 'moslora-studio.vsix');
    run(process.execPath, [join(ROOT, 'scripts', 'package.mjs'), '--out', vsix]);
    run(CODE_SERVER, ['--install-extension', vsix, '--extensions-dir', extensions, '--user-data-dir', userData, '--config', join(temp, 'config.yaml')]);
    assert.ok(readdirSync(extensions).some((name) => name.startsWith('moslora-studio.moslora-studio-')), `installed: ${readdirSync(extensions).join(', ')}`);

    const port = await freePort();
    codeServer = spawn(
      CODE_SERVER,
      [
        '--auth', 'none', '--bind-addr', `127.0.0.1:${port}`, '--disable-telemetry', '--disable-update-check', '--disable-workspace-trust',
        '--user-data-dir', userData, '--extensions-dir', extensions, '--config', join(temp, 'config.yaml'), workspace,
      ],
      { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: temp } },
    );
    const listening = new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        serverLog += chunk.toString();
        if (serverLog.includes('HTTP server listening')) resolve();
      };
      codeServer!.stdout!.on('data', onData);
      codeServer!.stderr!.on('data', onData);
      codeServer!.on('exit', (code) => reject(new Error(`code-server exited with ${code}:\n${serverLog}`)));
    });
    await listening;

    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`http://127.0.0.1:${port}/?folder=${encodeURIComponent(workspace)}`);
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (codeServer?.pid) {
      try {
        process.kill(-codeServer.pid, 'SIGKILL'); // its group: the extension host, our server, a trainer
      } catch {
        // already gone
      }
    }
    if (temp) rmSync(temp, { recursive: true, force: true });
  });

  async function shot(name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, name) });
  }

  /**
   * Runs a command from the palette by its title, as a user types it. The palette lists the
   * commands known when it opens: in a fresh window, until the extensions' manifests are read,
   * ours are not among them, so it is opened again until the command shows.
   */
  async function palette(title: string, timeout = 30_000): Promise<void> {
    const until = Date.now() + timeout;
    const input = page.locator('.quick-input-widget input');
    const row = page.locator('.quick-input-list .monaco-list-row', { hasText: title }).first();
    for (;;) {
      await page.keyboard.press('F1');
      await input.waitFor();
      await input.fill(`>${title}`);
      try {
        await row.waitFor({ timeout: Math.min(10_000, Math.max(1, until - Date.now())) });
        break;
      } catch (error) {
        if (Date.now() >= until) {
          await shot(`failed-palette-${title.replace(/\W+/g, '-')}.png`);
          throw error;
        }
        await page.keyboard.press('Escape');
      }
    }
    await page.keyboard.press('Enter');
  }

  async function openFile(name: string): Promise<void> {
    await palette('Go to File');
    await page.keyboard.type(name);
    await page.locator('.quick-input-list .monaco-list-row', { hasText: name }).first().waitFor();
    await page.keyboard.press('Enter');
    await page.locator('.tab.active', { hasText: name }).waitFor();
  }

  /** The training panel's page: the webview iframe, and VS Code's inner frame that holds our page. */
  function panel(): FrameLocator {
    return page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
  }

  function statusItem() {
    return page.locator('.statusbar-item', { hasText: 'MoSLoRA' });
  }

  function toast(text: string | RegExp) {
    return page.locator('.notifications-toasts .notification-list-item', { hasText: text });
  }

  /** A run picker of the panel (the Training tab's or the Mixers tab's) set to a run, as a pick does. */
  async function pick(tab: 'training' | 'mixers', runName: string): Promise<void> {
    await panel()
      .locator(`.tab-${tab} vscode-single-select.run-select`)
      .evaluate((select, value) => {
        (select as unknown as { value: string }).value = value;
        select.dispatchEvent(new Event('change'));
      }, runName);
  }

  async function tab(name: 'Training' | 'Compare' | 'Mixers'): Promise<void> {
    await panel().locator('vscode-tab-header', { hasText: name }).click();
  }

  function metricsOf(runDir: string): Metric[] {
    return readFileSync(join(runDir, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Metric);
  }

  function runFolders(): string[] {
    const dir = join(workspace, 'runs');
    return existsSync(dir) ? readdirSync(dir).filter((name) => existsSync(join(dir, name, 'config.yaml'))).sort() : [];
  }

  test('New Adapter Config, in a workspace without an examples/ folder, finds the model and the data: no errors', { timeout: 120_000 }, async () => {
    // a fresh window lists the extensions' commands once it has read their manifests
    await palette('MoSLoRA: New Adapter Config', 90_000);
    const input = page.locator('.quick-input-widget input');
    await page.locator('.quick-input-widget', { hasText: 'NAME.moslora.yaml' }).waitFor({ timeout: 60_000 }); // the extension activates first
    assert.equal(await input.inputValue(), 'adapter');
    await page.keyboard.press('Enter');
    // one model folder and one file named like training data: nothing to ask
    await page.locator('.tab.active', { hasText: 'adapter.moslora.yaml' }).waitFor({ timeout: 30_000 });
    const text = readFileSync(join(workspace, 'adapter.moslora.yaml'), 'utf8');
    const written = parse(text) as { model: string; data: { train: string; eval: string; format: string }; target_modules: string[] };
    assert.deepEqual([written.model, written.data.train, written.data.eval, written.data.format], ['./tiny-model', './tiny-task/train.jsonl', './tiny-task/eval.jsonl', 'completion']);
    assert.match(text, /eval-mc\.jsonl \(multiple choice/, 'it names the other eval file it found');
    assert.deepEqual(parseConfigText(text, join(workspace, 'adapter.moslora.yaml')).issues, []);

    // the server reads the same paths: the Estimate lens counts the model and the data
    await page.locator('.codelens-decoration a', { hasText: 'Estimate' }).first().click();
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor({ timeout: 60_000 });
    assert.match(await dialog.innerText(), /1,500 training examples.*60 optimizer steps/s);
    await shot('0-new-config.png');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  test('a planted mistake shows in the Problems panel with its quick fix; the new config has none', { timeout: 120_000 }, async () => {
    await openFile('tiny.moslora.yaml');
    await page.locator('.monaco-editor .view-lines', { hasText: 'target_modules' }).waitFor();

    await palette('View: Focus Problems');
    const row = page.locator('.markers-panel .monaco-list-row', { hasText: 'k_prj' });
    await row.first().waitFor({ timeout: 60_000 }); // the server reads the model
    assert.match(await row.first().innerText(), /k_proj/, 'the diagnostic suggests the right module');
    // both configs are open; the server checked the new one first: it has no row
    assert.equal(await page.locator('.markers-panel .monaco-list-row', { hasText: 'adapter.moslora.yaml' }).count(), 0);
    await shot('1-problems.png');

    // the user's way to fix it: go to the problem, Ctrl+. , take the first fix
    await row.first().dblclick();
    await page.locator('.monaco-editor.focused').waitFor();
    await page.keyboard.press('Control+.');
    await page.locator('.action-widget .monaco-list-row', { hasText: 'k_proj' }).first().waitFor();
    await shot('2-quick-fix.png');
    await page.keyboard.press('Enter');
    await page.locator('.markers-panel .monaco-list-row', { hasText: 'k_prj' }).waitFor({ state: 'detached', timeout: 30_000 });
    await page.locator('.monaco-editor .view-lines', { hasText: 'k_proj, v_proj' }).waitFor();
    await page.keyboard.press('Control+S');
  });

  test('the Estimate code lens shows LoRA and MoSLoRA parameters and the steps', { timeout: 60_000 }, async () => {
    await page.keyboard.press('Control+Home'); // the lenses sit above the first line
    await page.locator('.codelens-decoration a', { hasText: 'Estimate' }).first().click();
    const dialog = page.locator('.monaco-dialog-box');
    await dialog.waitFor();
    const text = await dialog.innerText();
    assert.match(text, /LoRA trains 45,056 parameters \(6\.24 % of the base\)/, text);
    assert.match(text, /MoSLoRA trains 46,336/, text);
    assert.match(text, new RegExp(`${TOTAL_STEPS} optimizer steps`), text);
    await shot('3-estimate.png');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
  });

  test('Start Training from the palette opens the panel, draws the loss and reports in the status bar', { timeout: 240_000 }, async () => {
    await page.locator('.monaco-editor .view-lines', { hasText: 'target_modules' }).click();
    await palette('MoSLoRA: Start Training');

    // the status bar follows the job: loading, then step/total with the loss and an ETA
    const training = statusItem().filter({ hasText: new RegExp(`MoSLoRA \\d+/${TOTAL_STEPS} · loss \\d.* · ETA \\d+:\\d\\d`) });
    await training.first().waitFor({ timeout: 90_000 });

    // the panel opened beside the editor and draws the loss curve as records stream in
    const frame = panel();
    await frame.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
    await frame.locator('[data-chart="train/loss"][data-points-drawn]:not([data-points-drawn="0"])').waitFor({ timeout: 60_000 });
    const width = (await page.locator('iframe.webview.ready').boundingBox())!.width;
    console.log(`# the panel beside the editor is ${Math.round(width)} px wide in a 1600 px window`);
    await shot('4-training.png');

    // to the end: done in the status bar and the panel, every logged step drawn
    await statusItem().filter({ hasText: 'MoSLoRA done' }).first().waitFor({ timeout: 120_000 });
    await frame.locator('.run-header .phase', { hasText: 'done' }).waitFor({ timeout: 30_000 });
    const drawn = Number(await frame.locator('[data-chart="train/loss"]').getAttribute('data-points-drawn'));
    assert.equal(drawn, TOTAL_STEPS / 2, 'one point per logged step (log_interval 2)');
    const header = await frame.locator('.run-header').innerText();
    assert.match(header, /wasm/, `the panel names the backend the trainer started: ${header}`);

    // one loss for the run: the header's is the status bar's (the last logged, raw)
    const status = await statusItem().filter({ hasText: 'MoSLoRA done' }).first().innerText();
    const statusLoss = /loss ([\d.]+)/.exec(status)?.[1];
    assert.ok(statusLoss, status);
    assert.match(header, new RegExp(`loss ${statusLoss.replace('.', '\\.')}(?!\\d)`), `${header} vs ${status}`);
    await shot('5-done.png');

    // what the run left on disk is what the panel drew
    runs.push(...runFolders().map((name) => join(workspace, 'runs', name)));
    assert.equal(runs.length, 1, 'runs beside the config, in the workspace');
    assert.equal(metricsOf(runs[0]!).filter((m) => m.kind === 'train').length, drawn);
    assert.ok(existsSync(join(runs[0]!, 'adapter', 'adapter_config.json')));
    const { threads, device } = JSON.parse(readFileSync(join(runs[0]!, 'summary.json'), 'utf8')) as { threads: number; device: string };
    if (availableParallelism() > 1) assert.ok(threads > 1, `the installed extension shares the batch across cores (its worker is in the .vsix): ${threads} thread(s)`);
    assert.match(device, /products on onnxruntime's MLAS/, `the installed extension multiplies on MLAS (onnxruntime-node is in the .vsix): ${device}`);
    assert.deepEqual(pageErrors, []);
  });

  test('Try Adapter prints the base and the tuned continuation with their token counts', { timeout: 180_000 }, async () => {
    await palette('MoSLoRA: Try Adapter');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: runs[0]!.split('/').at(-1)! }).first().waitFor({ timeout: 30_000 });
    await page.keyboard.press('Enter');
    // the prompt: the run's first eval example, offered to edit
    const input = page.locator('.quick-input-widget input');
    await page.locator('.quick-input-widget', { hasText: 'Prompt' }).waitFor();
    assert.match(await input.inputValue(), /^What are these: .*\\nAnswer:$/);
    await page.keyboard.press('Enter');
    const output = page.locator('.part.panel .monaco-editor .view-lines', { hasText: 'with adapter:' });
    await output.waitFor({ timeout: 150_000 });
    const text = (await output.innerText()).replace(/\u00a0/g, ' ');
    const counts = [...text.matchAll(/^(base model|with adapter): +".*" \((\S+) tokens\)$/gm)].map((m) => m[2]!);
    assert.equal(counts.length, 2, text);
    for (const count of counts) {
      assert.match(count, /^\d+$/, `a count of tokens, not their ids: ${count}`);
      assert.ok(Number(count) >= 1 && Number(count) <= 32, `at most the 32 new tokens asked for: ${count}`);
    }
    await shot('6-try-adapter.png');
  });

  test('a second job waits in the queue and says so; Stop, then Resume continues the curve', { timeout: 300_000 }, async () => {
    await openFile('tiny.moslora.yaml');
    await palette('MoSLoRA: Start Training');
    const frame = panel();
    await statusItem().filter({ hasText: /MoSLoRA \d+\/60 · loss/ }).first().waitFor({ timeout: 90_000 });

    // a second Start while it trains: queued, in the notification, the status bar and the panel
    await page.locator('.monaco-editor .view-lines', { hasText: 'target_modules' }).click();
    await palette('MoSLoRA: Start Training');
    await toast(/tiny is queued: one job trains at a time/).first().waitFor({ timeout: 30_000 });
    await statusItem().filter({ hasText: '1 queued' }).first().waitFor();
    const queued = frame.locator('.queue .queued-job');
    await queued.waitFor();
    assert.match(await queued.innerText(), /queued\s+tiny\s+waits for tiny-/i);
    await shot('7-queued.png');
    await queued.locator('vscode-button.cancel-queued').click();
    await queued.waitFor({ state: 'detached', timeout: 30_000 });
    await statusItem().filter({ hasText: '1 queued' }).waitFor({ state: 'detached' });

    // Stop from the panel: a checkpoint at the step it stopped
    await frame.locator('.run-header .phase', { hasText: 'training' }).waitFor();
    await frame.locator('.run-header vscode-button.stop').click();
    await statusItem().filter({ hasText: 'MoSLoRA stopped' }).first().waitFor({ timeout: 60_000 });
    await frame.locator('.run-header .phase', { hasText: 'stopped' }).waitFor();
    const folders = runFolders();
    assert.equal(folders.length, 2, `the queued job made no run: ${folders.join(', ')}`);
    runs.push(join(workspace, 'runs', folders.find((name) => !runs[0]!.endsWith(name))!));
    const stopped = JSON.parse(readFileSync(join(runs[1]!, 'summary.json'), 'utf8')) as { state: string; steps: number };
    assert.equal(stopped.state, 'cancelled');
    assert.ok(stopped.steps < TOTAL_STEPS, `stopped early, at step ${stopped.steps}`);
    assert.ok(readdirSync(join(runs[1]!, 'checkpoints')).includes(`step-${stopped.steps}`), 'a checkpoint at the step it stopped');
    const before = metricsOf(runs[1]!).filter((m) => m.kind === 'train');
    await frame.locator('.run-header vscode-button.resume').waitFor();
    await shot('8-stopped.png');

    // Resume from the panel: the same run goes on from its checkpoint to the end
    await frame.locator('.run-header vscode-button.resume').click();
    await statusItem().filter({ hasText: /MoSLoRA \d+\/60 · loss/ }).first().waitFor({ timeout: 90_000 });
    await statusItem().filter({ hasText: 'MoSLoRA done' }).first().waitFor({ timeout: 120_000 });
    await frame.locator('.run-header .phase', { hasText: 'done' }).waitFor({ timeout: 30_000 });
    assert.equal(runFolders().length, 2, 'resumed in its own folder, not a new run');
    const after = metricsOf(runs[1]!).filter((m) => m.kind === 'train');
    const steps = after.map((m) => m.step);
    assert.deepEqual(steps, Array.from({ length: TOTAL_STEPS / 2 }, (_, i) => 2 * (i + 1)), 'every logged step once, from 2 to the end');
    assert.deepEqual(after.slice(0, before.length), before, 'the steps before the stop are kept as they were');
    await frame.locator(`[data-chart="train/loss"][data-points-drawn="${TOTAL_STEPS / 2}"]`).waitFor({ timeout: 30_000 });
    const header = await frame.locator('.run-header').innerText();
    assert.ok(header.includes(runs[1]!.split('/').at(-1)!), `the panel shows the resumed run: ${header}`);
    await shot('9-resumed.png');
  });

  test('the run pickers: the Training and Mixers tabs show any run; a LoRA run says it has no mixer', { timeout: 120_000 }, async () => {
    const frame = panel();
    const [first, second] = runs.map((dir) => dir.split('/').at(-1)!) as [string, string];
    await tab('Training');
    const options = await frame.locator('.tab-training vscode-single-select.run-select vscode-option').allInnerTexts();
    assert.equal(options.length, 2, options.join(' | '));
    assert.match(options[0]!, new RegExp(`^${second} · moslora · done · loss \\d`), 'newest first, with method, state and loss');
    assert.match(options[1]!, new RegExp(`^${first} · moslora · done · loss \\d`));
    await pick('training', first);
    await frame.locator('.run-header .run-name', { hasText: first }).waitFor();
    await frame.locator(`[data-chart="train/loss"][data-points-drawn="${TOTAL_STEPS / 2}"]`).waitFor();
    await shot('10-picker-training.png');

    await tab('Mixers');
    await frame.locator('canvas.heatmap[data-r="8"]').waitFor({ timeout: 30_000 });
    assert.equal(await frame.locator('.tab-mixers vscode-single-select.run-select').evaluate((s) => (s as unknown as { value: string }).value), first, 'both tabs show the run picked');
    await pick('mixers', second);
    // (the Training tab is hidden behind the Mixers tab: its header is there, not visible)
    await frame.locator('.tab-training .run-header .run-name', { hasText: second }).waitFor({ state: 'attached' });
    await shot('11-picker-mixers.png');

    // a LoRA run, newest and finished: "Show Mixer Heatmaps" says it has no mixer and shows a run that has one
    const lora = join(workspace, 'runs', 'tiny-lora-copy');
    cpSync(runs[0]!, lora, { recursive: true });
    const config = parse(readFileSync(join(lora, 'config.yaml'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(lora, 'config.yaml'), stringify({ ...config, method: 'lora' }));
    const summary = JSON.parse(readFileSync(join(lora, 'summary.json'), 'utf8')) as Record<string, unknown>;
    writeFileSync(join(lora, 'summary.json'), JSON.stringify({ ...summary, runDir: lora, method: 'lora' }));
    rmSync(join(lora, 'mixers.jsonl'));
    await palette('MoSLoRA: Show Mixer Heatmaps');
    await toast(/tiny-lora-copy is a lora run: it learns no mixer.*showing tiny-/).first().waitFor({ timeout: 30_000 });
    await frame.locator('canvas.heatmap[data-r="8"]').waitFor();
    await pick('mixers', 'tiny-lora-copy');
    await frame.locator('.no-mixer', { hasText: 'tiny-lora-copy is a lora run' }).waitFor();
    assert.equal(await frame.locator('.mixer-runs vscode-button').count(), 2, 'it offers the two MoSLoRA runs');
    await shot('12-lora-no-mixer.png');
    await frame.locator('.mixer-runs vscode-button', { hasText: second }).click();
    await frame.locator('canvas.heatmap[data-r="8"]').waitFor();
  });

  test('Compare: the settings that differ, rename, delete with confirmation, and a confirmed PNG that holds its legend', { timeout: 180_000 }, async () => {
    const frame = panel();
    await tab('Compare');
    await frame.locator('.compare-legend tbody tr').nth(2).waitFor({ timeout: 30_000 });
    const keys = await frame.locator('.compare-hyper tbody tr').evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { key: string } }).dataset.key));
    assert.ok(keys.includes('method'), `the LoRA copy differs in method: ${keys.join(', ')}`);
    assert.ok(!keys.includes('r') && !keys.includes('configPath') && !keys.includes('output.runs_dir'), keys.join(', '));
    await shot('13-compare.png');

    // rename the LoRA copy (the extension asks for the name), then delete it (it asks first)
    await frame.locator('.compare-legend tbody tr', { hasText: 'tiny-lora-copy' }).locator('button.rename').click();
    const input = page.locator('.quick-input-widget input');
    await page.locator('.quick-input-widget', { hasText: 'New name of the run folder' }).waitFor();
    await input.fill('lora-baseline');
    await page.keyboard.press('Enter');
    await frame.locator('.compare-legend tbody tr', { hasText: 'lora-baseline' }).waitFor({ timeout: 30_000 });
    assert.ok(existsSync(join(workspace, 'runs', 'lora-baseline', 'metrics.jsonl')) && !existsSync(join(workspace, 'runs', 'tiny-lora-copy')));
    await frame.locator('.compare-legend tbody tr', { hasText: 'lora-baseline' }).locator('button.delete').click();
    const dialog = page.locator('.monaco-dialog-box', { hasText: 'Delete run lora-baseline?' });
    await dialog.waitFor();
    await shot('14-delete-confirm.png');
    await dialog.locator('.monaco-button', { hasText: 'Delete' }).click();
    await frame.locator('.compare-legend tbody tr', { hasText: 'lora-baseline' }).waitFor({ state: 'detached', timeout: 30_000 });
    assert.ok(!existsSync(join(workspace, 'runs', 'lora-baseline')));
    assert.deepEqual(runFolders(), runs.map((dir) => dir.split('/').at(-1)!).sort(), 'only the deleted run went');

    // export the chart: a save dialog, then a notification that says where it went
    await frame.locator('vscode-button.export-png').click();
    // VS Code's own save dialog (a path in the quick input): the workspace and the file name offered
    const target = join(workspace, 'moslora-compare-train_loss.png');
    await page.waitForFunction(`document.querySelector('.quick-input-widget input')?.value === ${JSON.stringify(target)}`, undefined, { timeout: 30_000 });
    await shot('15-save-dialog.png');
    await page.keyboard.press('Enter');
    await toast(/exported moslora-compare-train_loss\.png \(\d+ KB\)/).first().waitFor({ timeout: 30_000 });
    await shot('16-exported.png');
    // the image holds its legend: a margin of background on the right, nothing cut at the edge
    const image = decodePng(readFileSync(target));
    const ink = inkBox(image)!;
    assert.ok(image.width - 1 - ink.right >= 6, `ink reaches column ${ink.right} of ${image.width}: something is cut at the right edge`);
    assert.ok(ink.left >= 6, `ink from column ${ink.left}: something is cut at the left edge`);
    assert.ok(statSync(target).size > 1000);
  });

  test('a reloaded window restores the panel; Open Training Panel shows the newest finished run; no channel or resize errors in the logs', { timeout: 120_000 }, async () => {
    const newest = runs[1]!.split('/').at(-1)!;
    await page.reload();
    await page.waitForSelector('.monaco-workbench', { timeout: 60_000 });
    const frame = panel();
    await frame.locator('body[data-ready="true"]').waitFor({ timeout: 60_000 });
    await tab('Training');
    await frame.locator(`[data-chart="train/loss"][data-points-drawn="${TOTAL_STEPS / 2}"]`).waitFor({ timeout: 60_000 });
    // the training panel beside the editor, the bottom panel hidden (it stays so for the next test)
    await palette('View: Hide Panel');
    await shot('17-restored.png');
    await palette('MoSLoRA: Open Training Panel');
    await frame.locator('.run-header .run-name', { hasText: newest }).waitFor({ timeout: 30_000 });
    assert.deepEqual(pageErrors, []);
    const logs = logText(join(userData, 'logs'));
    assert.doesNotMatch(logs, /Channel has been closed/, 'no output channel written after it closed (at the reload)');
    assert.doesNotMatch(logs, /ResizeObserver loop/, 'no resize notes reported as panel errors');
  });

  test('the panel in a high-contrast theme', { timeout: 90_000 }, async () => {
    // the user's settings, as "Preferences: Color Theme" writes them; the window reloads with them
    const settingsFile = join(userData, 'User', 'settings.json');
    const settings = JSON.parse(readFileSync(settingsFile, 'utf8')) as Record<string, unknown>;
    writeFileSync(settingsFile, JSON.stringify({ ...settings, 'workbench.colorTheme': 'Default High Contrast' }));
    await page.reload();
    await page.locator('.monaco-workbench.hc-black').waitFor({ timeout: 60_000 });
    const frame = panel();
    await frame.locator('body.vscode-high-contrast').waitFor({ timeout: 30_000 });
    // the theme's variables as VS Code gives them to a webview (test/browser/themes.ts copies them)
    writeFileSync(join(ARTIFACTS, 'hc-webview-vars.css'), ((await frame.locator('html').getAttribute('style')) ?? '').replace(/; /g, ';\n'));
    await tab('Training');
    await frame.locator(`[data-chart="train/loss"][data-points-drawn="${TOTAL_STEPS / 2}"]`).waitFor();
    await shot('18-hc-training.png');
    await tab('Compare');
    await frame.locator('.compare-legend tbody tr').first().waitFor();
    await shot('19-hc-compare.png');
    await tab('Mixers');
    await frame.locator('canvas.heatmap[data-r="8"]').waitFor();
    await shot('20-hc-mixers.png');
  });
});

/** Every log file code-server and the extension wrote, as one text. */
function logText(dir: string): string {
  if (!existsSync(dir)) return '';
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.log'))
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), 'utf8'))
    .join('\n');
}

function run(command: string, args: string[]): void {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: ROOT });
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}
