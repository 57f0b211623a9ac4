// Renders extension/media/icon.svg to extension/media/icon.png, 128 × 128: the Marketplace takes
// a PNG icon, not an SVG. Run after changing the SVG (needs Chromium: apt-get install chromium).
//   node scripts/render-icon.mjs
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const MEDIA = join(import.meta.dirname, '..', 'extension', 'media');
const svg = readFileSync(join(MEDIA, 'icon.svg'), 'utf8');
const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu'] });
try {
  const page = await browser.newPage({ viewport: { width: 128, height: 128 }, deviceScaleFactor: 1 });
  await page.setContent(`<html><body style="margin:0;background:transparent">${svg}</body></html>`);
  await page.locator('svg').screenshot({ path: join(MEDIA, 'icon.png'), omitBackground: true });
} finally {
  await browser.close();
}
console.log(`render-icon: ${join(MEDIA, 'icon.png')}`);
