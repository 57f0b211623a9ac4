// The palette commands (protocol/commands.ts) as package.json contributes them: every id, the
// titles the panel names, and a walkthrough whose steps complete on our commands.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { commandIds, paletteTitles } from '../../protocol/commands';

const ROOT = resolve(import.meta.dirname, '..', '..');

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
