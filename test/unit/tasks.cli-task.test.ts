// The CLI runner behind the editor's merge, export and generate (server/tasks/cli-task.ts), on a
// fake CLI: the last stdout line as JSON, stderr as the error, and a cancelled request kills its
// child.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { CancellationTokenSource, LSPErrorCodes, ResponseError } from 'vscode-languageserver';
import { runCliJson } from '../../server/tasks/cli-task';

const ROOT = resolve(import.meta.dirname, '..', '..');
const FAKE_CLI = join(ROOT, 'test', 'fixtures', 'cli', 'fake-cli.mjs');
const temp = mkdtempSync(join(tmpdir(), 'moslora-tasks-'));
after(() => rmSync(temp, { recursive: true, force: true }));

describe('runCliJson', () => {
  const options = { cli: FAKE_CLI };

  it('resolves with the last stdout line as JSON and passes stderr lines to the log', async () => {
    const logged: string[] = [];
    const result = await runCliJson<{ modules: number; args: string[] }>(['ok', '--out', 'x y'], { ...options, onStderr: (line) => logged.push(line) });
    assert.equal(result.modules, 20);
    assert.deepEqual(result.args, ['--out', 'x y']);
    assert.deepEqual(logged, ['a warning on stderr']);
  });

  it("rejects with the child's stderr when it exits non-zero, and with the output when it is not JSON", async () => {
    await assert.rejects(runCliJson(['fail'], options), /adapter_config\.json: no such file/);
    await assert.rejects(runCliJson(['garbage'], options), /expected one JSON object as the last line.*not as JSON/);
  });

  it('keeps the error line when more lines follow it than the tail it passes on', async () => {
    const error = await runCliJson(['usage'], options).then(
      () => assert.fail('resolved'),
      (e: unknown) => e as Error,
    );
    const lines = error.message.split('\n');
    assert.equal(lines[0], "error: unknown option '--bogus'");
    assert.equal(lines.at(-1), '  help line 30');
    assert.ok(lines.length <= 22, `${lines.length} lines`);
  });

  it('kills the child when the request is cancelled, and says the request was cancelled', async () => {
    const pidFile = join(temp, 'pid');
    const source = new CancellationTokenSource();
    const running = runCliJson(['hang', pidFile], { ...options, token: source.token, killGraceMs: 500 });
    const pid = await waitFor(() => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) : undefined));
    assert.ok(alive(pid));
    source.cancel();
    await assert.rejects(running, (error: unknown) => error instanceof ResponseError && error.code === LSPErrorCodes.RequestCancelled);
    assert.equal(alive(pid), false, `the child ${pid} is gone`);
  });
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor<T>(probe: () => T | undefined, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && !Number.isNaN(value)) return value;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
