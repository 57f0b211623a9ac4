// The extension's pure parts, without VS Code: job state translation and tracking, progress and
// ETA, the status bar's words, run ids, the restart cap, the settings facade, runs on disk, the
// config template (checked with the server's own loader) and the estimate's words.
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { Config } from '../../extension/config';
import { describeEstimate } from '../../extension/estimate';
import { JobTracker, phaseOf, Progress, queuedJobs, runStateOf, statusOf } from '../../extension/jobs';
import { RestartBudget } from '../../extension/restarts';
import { RunIds } from '../../extension/runIds';
import { checkpointSteps, chooseMixerRun, chooseRun, finishedPhase, flatten, listingOf, newestFirst, readRunConfig, runsDirOf } from '../../extension/runs';
import { evalFor, kindOf, namedForTraining, scanWorkspace, targetModulesFor, trainCandidates } from '../../extension/scan';
import { configTemplate, examplePaths, PLACEHOLDER_PATHS } from '../../extension/template';
import { parseConfigText } from '../../server/config/load';
import { commandIds, paletteTitles } from '../../protocol/commands';
import type { JobInfo, JobUpdate, RunFolder } from '../../protocol/editor';
import { RUN_PHASES, type RunListing, type RunPhase } from '../../protocol/webview';
import type { MetricRecord } from '../../protocol/records';

const ROOT = resolve(import.meta.dirname, '..', '..');

function job(patch: Partial<JobInfo> = {}): JobInfo {
  return { id: 1, request: { configPath: '/ws/tiny.moslora.yaml' }, state: 'queued', step: 0, totalSteps: 0, lastOutput: [], ...patch };
}
const update = (j: JobInfo, metrics: MetricRecord[] = []): JobUpdate => ({ job: j, metrics, mixers: [] });
const train = (step: number, loss: number, wall: number): MetricRecord => ({ step, kind: 'train', loss, wall_s: wall });

describe("job states in the webview's words", () => {
  it('maps every server state to a RunPhase; a cancelled job is one the user stopped', () => {
    const states: JobInfo['state'][] = ['queued', 'loading', 'training', 'saving', 'done', 'cancelled', 'failed'];
    assert.deepEqual(states.map(phaseOf), ['queued', 'loading', 'training', 'saving', 'done', 'stopped', 'failed']);
    for (const state of states) assert.ok((RUN_PHASES as readonly string[]).includes(phaseOf(state)));
  });
});

describe('JobTracker', () => {
  it('follows a job from queued (provisional id) to its run folder, with the backend the trainer started', () => {
    let now = 1000;
    const tracker = new JobTracker(new RunIds(), () => now);
    const queued = tracker.apply(update(job({ message: 'queued: 1 job(s) running' })), 'auto');
    assert.equal(queued.tracked.runId, 'job-1');
    assert.equal(queued.tracked.name, 'tiny');
    assert.equal(runStateOf(queued.tracked).phase, 'queued');
    assert.equal(runStateOf(queued.tracked).startedAt, null);
    assert.equal(runStateOf(queued.tracked).reason, 'queued: 1 job(s) running');

    now = 2000;
    const loading = tracker.apply(update(job({ state: 'loading', runDir: '/ws/runs/tiny-1', backend: 'wasm', device: 'CPU (WebAssembly, SIMD)' })));
    assert.equal(loading.runIdChanged, true);
    assert.equal(loading.tracked.runId, 'tiny-1');
    assert.equal(tracker.runIds.dirOf('tiny-1'), '/ws/runs/tiny-1');
    const state = runStateOf(loading.tracked);
    assert.deepEqual([state.name, state.phase, state.backend, state.device, state.startedAt], ['tiny-1', 'loading', 'wasm', 'CPU (WebAssembly, SIMD)', 2000]);
    assert.equal(tracker.byRunId('tiny-1'), loading.tracked);
  });

  it('reports the end once, the summary when it comes, and never goes back from a final state', () => {
    const tracker = new JobTracker();
    tracker.apply(update(job({ state: 'training', runDir: '/r/a', step: 5, totalSteps: 10 })));
    const done = tracker.apply(update(job({ state: 'done', runDir: '/r/a', step: 10, totalSteps: 10 })));
    assert.deepEqual([done.finished, done.summarized], [true, false]);
    const summary = { runDir: '/r/a', state: 'done', backend: 'cpu', device: 'CPU', threads: 1, method: 'moslora', steps: 10, totalSteps: 10, trainableParameters: 1, baseParameters: 2, finalLoss: 1, evalLoss: null, accuracy: null, medianStepSeconds: null, wallSeconds: 3 } as const;
    const summarized = tracker.apply(update(job({ state: 'done', runDir: '/r/a', step: 10, totalSteps: 10, summary })));
    assert.deepEqual([summarized.finished, summarized.summarized], [false, true]);
    assert.equal(runStateOf(summarized.tracked).backend, 'cpu');
    // the answer to startTraining arriving after the notifications
    const late = tracker.apply(update(job({ state: 'loading', runDir: '/r/a' })));
    assert.equal(late.tracked.job.state, 'done');
    assert.deepEqual(tracker.active(), []);
  });

  it("marks unfinished jobs failed when the server goes, and keeps the next server's job 1 apart", () => {
    const tracker = new JobTracker();
    const first = tracker.apply(update(job({ state: 'training', runDir: '/r/a' }))).tracked;
    const lost = tracker.serverGone('the server exited');
    assert.deepEqual(lost, [first]);
    assert.equal(first.job.state, 'failed');
    assert.equal(runStateOf(first).reason, 'the server exited');
    const next = tracker.apply(update(job({ id: 1, state: 'queued' }))).tracked;
    assert.notEqual(next, first);
    assert.equal(next.runId, 'job-2.1');
    assert.equal(tracker.current(), next);
    assert.equal(tracker.all().length, 2);
  });

  it('picks the running job over a queued one, and the newest finished one when nothing runs', () => {
    const tracker = new JobTracker();
    const a = tracker.apply(update(job({ id: 1, state: 'training', runDir: '/r/a' }))).tracked;
    const b = tracker.apply(update(job({ id: 2, state: 'queued' }))).tracked;
    assert.equal(tracker.current(), a);
    tracker.apply(update(job({ id: 1, state: 'failed', runDir: '/r/a', message: 'out of memory' })));
    tracker.apply(update(job({ id: 2, state: 'cancelled', message: 'cancelled before it started' })));
    assert.equal(tracker.current(), b);
  });

  it('lists the queued jobs, each with what it waits for; a resumed job is named by its run', () => {
    const tracker = new JobTracker();
    tracker.apply(update(job({ id: 1, state: 'training', runDir: '/r/tiny-1' })));
    tracker.apply(update(job({ id: 2, state: 'queued' })));
    tracker.apply(update(job({ id: 3, state: 'queued', request: { configPath: '/ws/tiny.moslora.yaml', resumeRunDir: '/r/tiny-0' } })));
    assert.deepEqual(queuedJobs(tracker), [
      { jobKey: '1:2', name: 'tiny', reason: 'waits for tiny-1: one job trains at a time' },
      { jobKey: '1:3', name: 'tiny-0', reason: 'waits for tiny-1 and 1 queued before it: one job trains at a time' },
    ]);
    tracker.apply(update(job({ id: 2, state: 'cancelled' })));
    assert.deepEqual(tracker.queued().map((t) => t.key), ['1:3']);
  });

  it('follows a renamed run folder, and forgets a deleted one', () => {
    const tracker = new JobTracker();
    const done = tracker.apply(update(job({ state: 'done', runDir: '/r/a' }))).tracked;
    tracker.runMoved('/r/a', '/r/baseline');
    assert.deepEqual([done.runId, done.name, done.job.runDir], ['baseline', 'baseline', '/r/baseline']);
    assert.equal(tracker.runIds.dirOf('a'), undefined, 'the old id means nothing any more');
    assert.equal(tracker.runIds.dirOf('baseline'), '/r/baseline');
    tracker.runMoved('/r/baseline', undefined);
    assert.equal(tracker.runIds.dirOf('baseline'), undefined);
  });
});

describe('Progress and the status bar', () => {
  it('estimates steps per second over a window of logged steps, and starts again after a resume', () => {
    const progress = new Progress(3);
    assert.equal(progress.rate, undefined);
    progress.add([train(10, 3, 5), train(20, 2.5, 10)]);
    assert.equal(progress.rate, 2);
    assert.equal(progress.eta(20, 100), 40);
    assert.equal(progress.lastLoss, 2.5);
    progress.add([train(30, 2, 12), train(40, 1.5, 14)]); // window of 3: 20→40 in 4 s
    assert.equal(progress.rate, 5);
    progress.add([{ step: 40, kind: 'eval', eval_loss: 9, wall_s: 15 }]);
    assert.equal(progress.lastLoss, 1.5, 'eval records do not move the train loss');
    progress.add([train(5, 4, 100)]); // resumed from an earlier checkpoint
    assert.equal(progress.rate, undefined);
  });

  it('shows step/total, loss and ETA while training; queued and failed stand out', () => {
    const tracker = new JobTracker();
    const queued = tracker.apply(update(job())).tracked;
    assert.deepEqual([statusOf(queued).text, statusOf(queued).severity], ['$(clock) MoSLoRA: queued', 'warning']);
    const training = tracker.apply(update(job({ state: 'training', runDir: '/r/t', step: 20, totalSteps: 1200 }), [train(10, 3.21, 5), train(20, 3.1234, 10)])).tracked;
    assert.equal(statusOf(training).text, '$(sync~spin) MoSLoRA 20/1,200 · loss 3.123 · ETA 9:50');
    const behind = statusOf(training, 2);
    assert.equal(behind.text, '$(sync~spin) MoSLoRA 20/1,200 · loss 3.123 · ETA 9:50 · 2 queued', 'the jobs waiting behind it');
    assert.match(behind.tooltip, /2 more jobs queued/);
    const failed = tracker.apply(update(job({ state: 'failed', runDir: '/r/t', step: 20, totalSteps: 1200, message: 'the trainer was killed by SIGKILL at step 20' }))).tracked;
    const view = statusOf(failed);
    assert.deepEqual([view.text, view.severity], ['$(error) MoSLoRA failed', 'error']);
    assert.match(view.tooltip, /SIGKILL/);
    assert.equal(statusOf(failed, 1).text, '$(error) MoSLoRA failed', 'a finished job has nothing behind it');
  });
});

describe('RunIds', () => {
  it('names runs by folder, tells two runs folders apart, and knows only the ids it handed out', () => {
    const ids = new RunIds();
    assert.equal(ids.idOf('/a/runs/tiny-1'), 'tiny-1');
    assert.equal(ids.idOf('/b/runs/tiny-1'), 'tiny-1~2');
    assert.equal(ids.idOf('/a/runs/tiny-1'), 'tiny-1');
    assert.equal(ids.dirOf('tiny-1~2'), '/b/runs/tiny-1');
    assert.equal(ids.dirOf('../../etc'), undefined);
    assert.equal(ids.dirOf('job-1'), undefined);
  });
});

describe('RestartBudget', () => {
  it('restarts 4 crashes within 3 minutes, refuses the 5th, and forgets crashes that left the window', () => {
    let now = 0;
    const budget = new RestartBudget(5, 180_000, () => now);
    for (let i = 1; i <= 4; i++) {
      now += 1000;
      assert.deepEqual(budget.crashed(), { restart: true, count: i });
    }
    now += 1000;
    assert.deepEqual(budget.crashed(), { restart: false, count: 5 });
    now += 180_000;
    assert.deepEqual(budget.crashed(), { restart: true, count: 1 });
    budget.reset();
    assert.deepEqual(budget.crashed(), { restart: true, count: 1 });
    assert.equal(budget.describeWindow(), '3 minutes');
  });
});

describe('Config', () => {
  const config = (values: Record<string, unknown>, root: string | undefined = '/ws') => new Config({ get: (key) => values[key] }, () => root);

  it('reads the backend, with auto (and anything unknown) leaving it to the config', () => {
    assert.equal(config({}).backend, 'auto');
    assert.equal(config({ backend: 'webgpu' }).backendOverride, 'webgpu');
    assert.equal(config({ backend: 'auto' }).backendOverride, undefined);
    assert.equal(config({ backend: 'cuda' }).backend, 'auto');
  });

  it("resolves the runs folder: empty means each config's own, relative starts at the workspace", () => {
    assert.equal(config({ runsDirectory: '' }).runsDirectory, undefined);
    assert.equal(config({ runsDirectory: '  ' }).runsDirectory, undefined);
    assert.equal(config({ runsDirectory: 'out/runs' }).runsDirectory, '/ws/out/runs');
    assert.equal(config({ runsDirectory: '/data/runs' }).runsDirectory, '/data/runs');
    assert.equal(new Config({ get: () => 'runs' }, () => undefined).runsDirectory, undefined, 'no workspace: nowhere to start');
    assert.equal(config({ runsDirectory: '~/runs' }).runsDirectory, resolve(process.env.HOME ?? '/', 'runs'));
  });
});

describe('runs on disk', () => {
  it("finds a config's runs folder from its output.runs_dir, relative to the config", () => {
    assert.equal(runsDirOf('model: m\n', '/ws/a/x.moslora.yaml'), '/ws/a/runs');
    assert.equal(runsDirOf('output:\n  runs_dir: ../out\n', '/ws/a/x.moslora.yaml'), '/ws/out');
    assert.equal(runsDirOf('{"output": {"runs_dir": "/abs"}}', '/ws/x.moslora.json'), '/abs');
    assert.equal(runsDirOf('output: [unclosed', '/ws/x.moslora.yaml'), '/ws/runs');
  });

  it('lists a finished run with its summary, and a run without one as stopped', () => {
    const ids = new RunIds();
    const done = listingOf(
      { runDir: '/ws/runs/a', name: 'a', summary: { state: 'done', backend: 'wasm', device: 'CPU', method: 'moslora', steps: 60, totalSteps: 60 }, checkpoints: [60], lastStep: 60 },
      ids,
      undefined,
    );
    assert.deepEqual(done, { runId: 'a', name: 'a', method: 'moslora', state: { runId: 'a', name: 'a', phase: 'done', step: 60, total: 60, backend: 'wasm', device: 'CPU', startedAt: null } });
    const crashed = listingOf({ runDir: '/ws/runs/b', name: 'b', summary: null, checkpoints: [30], lastStep: 42 }, ids, { method: 'lora', hyperparameters: { r: 8 } });
    assert.equal(crashed.method, 'lora');
    assert.equal(crashed.state?.phase, 'stopped');
    assert.equal(crashed.state?.step, 42);
    assert.match(crashed.state?.reason ?? '', /without a summary/);
    assert.equal(finishedPhase({ state: 'cancelled' }), 'stopped');
    assert.equal(finishedPhase({ state: 'failed' }), 'failed');
  });

  it('says which runs resume (stopped or failed, with a checkpoint), their final loss and settings', () => {
    const ids = new RunIds();
    const folder = (name: string, summary: Record<string, unknown> | null, checkpoints: number[]): RunFolder => ({ runDir: `/ws/runs/${name}`, name, summary, checkpoints, lastStep: 30 });
    const stopped = listingOf(folder('s', { state: 'cancelled', finalLoss: 2.632, steps: 30, totalSteps: 60 }, [30]), ids, { hyperparameters: { r: 8, 'training.learning_rate': 0.002 } });
    assert.deepEqual([stopped.resumable, stopped.finalLoss, stopped.hyperparameters], [true, 2.632, { r: 8, 'training.learning_rate': 0.002 }]);
    assert.equal(listingOf(folder('f', { state: 'failed' }, [20]), ids).resumable, true);
    assert.equal(listingOf(folder('n', { state: 'failed' }, []), ids).resumable, undefined, 'nothing to resume from');
    assert.equal(listingOf(folder('d', { state: 'done' }, [60]), ids).resumable, undefined, 'a finished run');
  });

  it('orders the runs of every runs folder newest first, by when each started', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'moslora-runs-'));
    try {
      const made = [
        ['a/runs/old', 1000],
        ['b/runs/newest', 3000],
        ['a/runs/middle', 2000],
      ] as const;
      const folders: RunFolder[] = made.map(([path, seconds]) => {
        mkdirSync(join(dir, path), { recursive: true });
        writeFileSync(join(dir, path, 'config.yaml'), 'method: lora\n');
        utimesSync(join(dir, path, 'config.yaml'), seconds, seconds);
        return { runDir: join(dir, path), name: path.split('/').at(-1)!, summary: null, checkpoints: [], lastStep: 0 };
      });
      assert.deepEqual((await newestFirst(folders)).map((r) => r.name), ['newest', 'middle', 'old']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the run a command shows when none is named', () => {
  const run = (name: string, phase: RunPhase, method = 'moslora'): RunListing => ({
    runId: name,
    name,
    method,
    state: { runId: name, name, phase, step: 1, total: 1, backend: 'wasm', device: 'CPU', startedAt: null },
  });

  it("Open Training Panel: a live job's run; else the newest that finished, saying why when a newer one did not", () => {
    assert.deepEqual(chooseRun([run('b', 'done'), run('a', 'done')], undefined), { runId: 'b' });
    assert.deepEqual(chooseRun([run('b', 'done')], 'live'), { runId: 'live' });
    const chosen = chooseRun([run('c', 'stopped'), run('b', 'failed'), run('a', 'done')], undefined);
    assert.equal(chosen?.runId, 'a');
    assert.match(chosen?.note ?? '', /showing a, the newest finished run \(c stopped\)/);
    assert.deepEqual(chooseRun([run('b', 'stopped'), run('a', 'failed')], undefined), { runId: 'b' }, 'none finished: the newest');
    assert.equal(chooseRun([], undefined), undefined);
  });

  it('Show Mixer Heatmaps: after a LoRA run it says so and shows the newest run with mixers', () => {
    const chosen = chooseMixerRun([run('lora-2', 'done', 'lora'), run('mos-1', 'done'), run('mos-0', 'done')], undefined);
    assert.equal(chosen?.runId, 'mos-1');
    assert.match(chosen?.note ?? '', /lora-2 is a lora run: it learns no mixer.*showing mos-1 \(moslora\)/);
    assert.deepEqual(chooseMixerRun([run('mos-1', 'done'), run('lora-0', 'done', 'lora')], undefined), { runId: 'mos-1' });
    const none = chooseMixerRun([run('lora-1', 'done', 'lora')], undefined);
    assert.equal(none?.runId, 'lora-1');
    assert.match(none?.note ?? '', /no run here learns one/);
  });
});

describe("a run's config.yaml", () => {
  const dir = mkdtempSync(join(tmpdir(), 'moslora-runconfig-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the config it came from, the method, the model and the hyperparameters as dotted keys', async () => {
    const runDir = join(dir, 'runs', 'a');
    mkdirSync(join(runDir, 'checkpoints', 'step-30'), { recursive: true });
    mkdirSync(join(runDir, 'checkpoints', '.step-40.tmp-123'));
    mkdirSync(join(runDir, 'checkpoints', 'step-10'));
    writeFileSync(
      join(runDir, 'config.yaml'),
      stringify({ model: '/ws/tiny-model', method: 'moslora', r: 8, target_modules: ['q_proj', 'v_proj'], data: { train: '/ws/t.jsonl', eval: null }, training: { learning_rate: 0.002, gradient_checkpointing: 'auto' }, output: { runs_dir: '/ws/runs' }, configPath: '/ws/tiny.moslora.yaml' }),
    );
    const config = await readRunConfig(runDir);
    assert.deepEqual({ ...config!, hyperparameters: { ...config!.hyperparameters } }, {
      configPath: '/ws/tiny.moslora.yaml',
      method: 'moslora',
      model: '/ws/tiny-model',
      hyperparameters: { model: '/ws/tiny-model', method: 'moslora', r: 8, target_modules: '["q_proj","v_proj"]', 'data.train': '/ws/t.jsonl', 'data.eval': null, 'training.learning_rate': 0.002, 'training.gradient_checkpointing': 'auto' },
    });
    assert.deepEqual(await checkpointSteps(runDir), [10, 30], 'complete checkpoints only, ascending');
    assert.deepEqual(await checkpointSteps(join(dir, 'nowhere')), []);
    assert.equal(await readRunConfig(join(dir, 'nowhere')), undefined);
    writeFileSync(join(runDir, 'config.yaml'), '- a list\n');
    assert.equal(await readRunConfig(runDir), undefined, 'not a mapping');
  });

  it('flattens nested keys, and a key named __proto__ stays a key', () => {
    const flat = flatten(JSON.parse('{"a": {"b": 1, "__proto__": {"c": 2}}, "d": [1, {"e": 2}]}') as Record<string, unknown>);
    assert.deepEqual(Object.entries(flat), [
      ['a.b', 1],
      ['a.__proto__.c', 2],
      ['d', '[1,{"e":2}]'],
    ]);
  });
});

describe('New Adapter Config in a workspace without examples/', () => {
  const root = mkdtempSync(join(tmpdir(), 'moslora-scan-'));
  after(() => rmSync(root, { recursive: true, force: true }));

  it('finds the model folder and the data of a copy of examples/, and picks the eval file of the same format', async () => {
    cpSync(join(ROOT, 'examples', 'tiny-model'), join(root, 'tiny-model'), { recursive: true });
    cpSync(join(ROOT, 'examples', 'tiny-task'), join(root, 'tiny-task'), { recursive: true });
    mkdirSync(join(root, 'node_modules', 'x'), { recursive: true });
    writeFileSync(join(root, 'node_modules', 'x', 'train.jsonl'), '{"text": "not ours"}\n');
    const found = await scanWorkspace(root);
    assert.deepEqual(found.models, [{ dir: join(root, 'tiny-model'), architecture: 'LlamaForCausalLM' }]);
    assert.deepEqual(
      found.datasets.map((d) => [d.file.slice(root.length + 1), d.kind]),
      [
        ['tiny-task/eval-mc.jsonl', 'choices'],
        ['tiny-task/eval.jsonl', 'completion'],
        ['tiny-task/train.jsonl', 'completion'],
      ],
    );
    const train = trainCandidates(found.datasets);
    assert.deepEqual(train.map((d) => d.file.slice(root.length + 1)), ['tiny-task/train.jsonl', 'tiny-task/eval.jsonl'], 'training data first; multiple choice cannot train');
    assert.deepEqual(train.filter(namedForTraining).length, 1);
    assert.equal(evalFor(train[0]!, found.datasets)?.file, join(root, 'tiny-task', 'eval.jsonl'), 'the same format before multiple choice');
    assert.equal(evalFor({ file: join(root, 'tiny-task', 'train.jsonl'), kind: 'text' }, found.datasets), undefined, 'no eval file in that format');

    // what New Adapter Config writes from it: a config with no problems by the server's loader
    const text = configTemplate({ model: './tiny-model', train: './tiny-task/train.jsonl', eval: './tiny-task/eval.jsonl', format: 'completion', targetModules: targetModulesFor('LlamaForCausalLM') }, 'found');
    writeFileSync(join(root, 'adapter.moslora.yaml'), text);
    assert.deepEqual(parseConfigText(text, join(root, 'adapter.moslora.yaml')).issues, []);
  });

  it('reads each format by its first record, and writes a config for each', () => {
    assert.equal(kindOf('{"text": "x"}'), 'text');
    assert.equal(kindOf('{"prompt": "p", "completion": "c"}'), 'completion');
    assert.equal(kindOf('{"instruction": "i", "input": "", "output": "o"}'), 'alpaca');
    assert.equal(kindOf('{"messages": [{"role": "user", "content": "hi"}]}'), 'chat');
    assert.equal(kindOf('{"prompt": "p", "choices": ["a", "b"], "answer": 0}'), 'choices');
    for (const line of ['not json', '[1, 2]', '{"question": "?"}', '']) assert.equal(kindOf(line), undefined, line);
    assert.deepEqual(targetModulesFor('GPT2LMHeadModel'), ['c_attn']);
    for (const format of ['text', 'alpaca', 'chat', 'completion'] as const) {
      const text = configTemplate({ model: './m', train: './t.jsonl', format, targetModules: ['c_attn'] }, 'found', ['Also beside the data: x.jsonl (text).']);
      const { config, issues } = parseConfigText(text, '/ws/a.moslora.yaml');
      assert.deepEqual(issues, [], format);
      assert.equal(config?.data.format, format);
      assert.equal(config?.data.eval, undefined, 'no eval file: no eval key');
      assert.match(text, /^# Also beside the data: x\.jsonl \(text\)\.$/m);
    }
  });
});

describe('the panel names the palette commands as package.json contributes them', () => {
  it('"MoSLoRA: Start Training" is the start command\'s category and title', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { contributes: { commands: { command: string; title: string; category: string }[] } };
    for (const [name, title] of Object.entries(paletteTitles)) {
      const command = manifest.contributes.commands.find((c) => c.command === commandIds[name as keyof typeof commandIds]);
      assert.equal(command ? `${command.category}: ${command.title}` : undefined, title);
    }
  });

  it('contributes every command id, and a walkthrough whose steps complete on our commands', () => {
    const manifest = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      icon: string;
      contributes: { commands: { command: string }[]; walkthroughs: { steps: { completionEvents: string[]; media: { markdown?: string; image?: string } }[] }[] };
    };
    assert.deepEqual(manifest.contributes.commands.map((c) => c.command).sort(), Object.values(commandIds).sort());
    const png = readFileSync(join(ROOT, manifest.icon));
    assert.equal(png.readUInt32BE(16), 128, 'a 128 px wide PNG icon');
    const ids = new Set<string>(Object.values(commandIds));
    for (const step of manifest.contributes.walkthroughs[0]!.steps) {
      const media = step.media.markdown ?? step.media.image!;
      assert.ok(readFileSync(join(ROOT, media)).length > 0, media);
      for (const event of step.completionEvents) {
        if (event.startsWith('onCommand:')) assert.ok(ids.has(event.slice('onCommand:'.length)), event);
      }
    }
  });
});

describe('the New Adapter Config template', () => {
  it('points at the shipped example relative to the config, from the root or a subfolder', () => {
    assert.deepEqual(examplePaths('/repo', '/repo/examples'), {
      model: './examples/tiny-model',
      train: './examples/tiny-task/train.jsonl',
      eval: './examples/tiny-task/eval.jsonl',
    });
    assert.equal(examplePaths('/repo/configs', '/repo/examples').model, '../examples/tiny-model');
  });

  it("is a valid config by the server's own loader, with the example and with placeholders", () => {
    for (const text of [configTemplate(examplePaths(ROOT, join(ROOT, 'examples')), 'example'), configTemplate(PLACEHOLDER_PATHS, 'placeholders')]) {
      const { config, issues } = parseConfigText(text, join(ROOT, 'new.moslora.yaml'));
      assert.deepEqual(issues, []);
      assert.equal(config?.method, 'moslora');
      assert.equal(config?.training.max_steps, 60);
    }
  });
});

describe('the estimate in words', () => {
  it('gives LoRA and MoSLoRA side by side, their share of the base, and the steps', () => {
    const text = describeEstimate({
      configPath: '/ws/tiny.moslora.yaml', model: '/ws/examples/tiny-model', architecture: 'LlamaForCausalLM', method: 'moslora', r: 8, modules: 20,
      baseParameters: 722_048, lora: 45_056, moslora: 46_336, trainable: 46_336, trainExamples: 1500, batchSize: 8, gradientAccumulation: 1, totalSteps: 60,
    });
    assert.match(text, /LoRA trains 45,056 parameters \(6\.24 % of the base\)/);
    assert.match(text, /MoSLoRA trains 46,336 \(6\.42 % of the base\): its mixers add 1,280, \+2\.841 % over LoRA/);
    assert.match(text, /1,500 training examples, batch 8 × 1 accumulation: 60 optimizer steps/);
  });
});

