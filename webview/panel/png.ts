// PNG export: the charts as drawn, on the theme's background, with titles and a text legend
// (uPlot's legend is HTML, so it would not be in the canvas). The image is as wide as its widest
// part, charts or legend lines, with a margin all round: nothing is cut at an edge.
import { css, currentPalette, type Rgb } from '../lib/theme';
import type { Chart } from './chart';

export interface LegendLine {
  colour?: Rgb;
  text: string;
}

export function chartsPng(title: string, charts: readonly Chart[], legend: readonly LegendLine[], columns = 2): string {
  const drawn = charts.filter((c) => c.canvas && c.canvas.width > 0);
  const p = currentPalette();
  const dpr = devicePixelRatio || 1;
  const pad = Math.round(12 * dpr);
  const titleH = Math.round(22 * dpr);
  const lineH = Math.round(18 * dpr);
  const cols = Math.max(1, Math.min(columns, drawn.length));
  const cellW = Math.max(0, ...drawn.map((c) => c.canvas!.width));
  const cellH = Math.max(0, ...drawn.map((c) => c.canvas!.height)) + titleH;
  const rows = Math.ceil(drawn.length / cols);
  const out = document.createElement('canvas');
  const ctx = out.getContext('2d')!;
  const font = (px: number, weight = ''): string => `${weight} ${Math.round(px * dpr)}px ${getComputedStyle(document.body).fontFamily}`;
  const swatchW = 20 * dpr;
  ctx.font = font(14, 'bold');
  const titleW = ctx.measureText(title).width;
  ctx.font = font(12);
  const legendW = Math.max(0, ...legend.map((line) => (line.colour ? swatchW : 0) + ctx.measureText(line.text).width));
  out.width = Math.ceil(pad * 2 + Math.max(cols * cellW + (cols - 1) * pad, titleW, legendW));
  out.height = pad * 2 + titleH + rows * (cellH + pad) + legend.length * lineH;
  // (sizing the canvas reset its context: the font and colours are set again below)
  ctx.fillStyle = css(p.background);
  ctx.fillRect(0, 0, out.width, out.height);
  ctx.fillStyle = css(p.foreground);
  ctx.textBaseline = 'top';
  ctx.font = font(14, 'bold');
  ctx.fillText(title, pad, pad);
  drawn.forEach((chart, i) => {
    const x = pad + (i % cols) * (cellW + pad);
    const y = pad + titleH + Math.floor(i / cols) * (cellH + pad);
    // one chart: the page title says what it is
    if (drawn.length > 1) {
      ctx.fillStyle = css(p.foreground);
      ctx.font = font(12, 'bold');
      ctx.fillText(chart.title, x, y);
    }
    ctx.drawImage(chart.canvas!, x, y + titleH);
  });
  let y = pad + titleH + rows * (cellH + pad);
  ctx.font = font(12);
  for (const line of legend) {
    let x = pad;
    if (line.colour) {
      ctx.fillStyle = css(line.colour);
      ctx.fillRect(x, y + lineH * 0.3, 14 * dpr, 4 * dpr);
      x += swatchW;
    }
    ctx.fillStyle = css(p.foreground);
    ctx.fillText(line.text, x, y);
    y += lineH;
  }
  return out.toDataURL('image/png');
}
