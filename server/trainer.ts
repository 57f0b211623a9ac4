// The trainer process: one training job, forked by the language server (server/jobs/manager.ts).
// It talks only over IPC; its stdout and stderr are kept by the server for failure reports.
import { runTrainingJob } from './engine/session';
import type { FromTrainer, ToTrainer } from '../protocol/trainer';

const controller = new AbortController();
// after a disconnect, send would raise ERR_IPC_CHANNEL_CLOSED and end the process before its checkpoint
const send = (message: FromTrainer) => {
  if (process.connected) process.send?.(message);
};

// The server is gone (it crashed or was killed): stop as a cancel does, with a checkpoint, rather
// than train on unobserved, holding the GPU while a restarted server starts the next job.
process.on('disconnect', () => controller.abort());

// A Ctrl-C in a terminal reaches every process of the foreground group: the CLI that forked this
// one (moslora ab) answers it with a cancel, so the run stops with its checkpoint, not mid-step.
process.on('SIGINT', () => {});

process.on('message', (message: ToTrainer) => {
  if (message.type === 'cancel') {
    controller.abort();
    return;
  }
  const { request } = message;
  runTrainingJob(request.configPath, {
    ...(request.resumeRunDir ? { resumeRunDir: request.resumeRunDir } : {}),
    ...(request.backend ? { backend: request.backend } : {}),
    ...(request.runsDir ? { runsDir: request.runsDir } : {}),
    ...(request.runDir ? { runDir: request.runDir } : {}),
    ...(request.overrides ? { overrides: request.overrides } : {}),
    ...(request.cores !== undefined ? { cores: request.cores } : {}),
    signal: controller.signal,
    onEvent: (event) => send({ type: 'event', event }),
  })
    .then((summary) => send({ type: 'result', summary }))
    .catch((error: unknown) => {
      console.error(error instanceof Error ? error.stack : String(error));
      send({ type: 'error', message: error instanceof Error ? error.message : String(error) });
    })
    .finally(() => process.disconnect?.());
});
