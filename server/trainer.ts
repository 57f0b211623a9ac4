// The trainer process: one training job, forked by the language server (server/jobs/manager.ts).
// It talks only over IPC; its stdout and stderr are kept by the server for failure reports.
import { runTrainingJob } from './engine/session';
import type { FromTrainer, ToTrainer } from './jobs/ipc';

const controller = new AbortController();
const send = (message: FromTrainer) => process.send?.(message);

process.on('message', (message: ToTrainer) => {
  if (message.type === 'cancel') {
    controller.abort();
    return;
  }
  runTrainingJob(message.request.configPath, {
    ...(message.request.resumeRunDir ? { resumeRunDir: message.request.resumeRunDir } : {}),
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
