// Colours come from VS Code's theme, never from us: VS Code sets `--vscode-*` CSS variables on
// <html> and a class on <body> (vscode-light, vscode-dark, vscode-high-contrast,
// vscode-high-contrast-light), and changes both when the user switches theme. Canvases (uPlot,
// the heatmaps) cannot use CSS variables, so we resolve them to rgb here and redraw on change.
import type { ThemeKind } from '../../protocol/webview';

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/** Named chart colours, in the order runs get them in Compare. */
export const SERIES_COLOURS = ['blue', 'orange', 'green', 'purple', 'red', 'yellow'] as const;
export type SeriesColour = (typeof SERIES_COLOURS)[number];

let probe: HTMLElement | undefined;

/**
 * The rgb a CSS colour resolves to, e.g. `var(--vscode-charts-red)`. A missing variable falls
 * back to the editor's foreground, then to the system text colour.
 */
export function resolveColour(css: string): Rgb {
  if (!probe) {
    probe = document.createElement('span');
    probe.hidden = true;
    document.body.append(probe);
  }
  probe.style.color = '';
  probe.style.color = css;
  if (!probe.style.color) probe.style.color = 'var(--vscode-editor-foreground, CanvasText)';
  return parseRgb(getComputedStyle(probe).color) ?? { r: 128, g: 128, b: 128 };
}

export function themeVar(name: string): Rgb {
  return resolveColour(`var(${name}, var(--vscode-editor-foreground, CanvasText))`);
}

export function chartColour(name: SeriesColour): Rgb {
  return themeVar(`--vscode-charts-${name}`);
}

/** "rgb(1, 2, 3)", "rgba(1, 2, 3, 0.5)", "rgb(1 2 3 / 50%)" → Rgb (alpha dropped). */
export function parseRgb(text: string): Rgb | undefined {
  const m = /rgba?\(\s*([\d.]+)[\s,]+([\d.]+)[\s,]+([\d.]+)/.exec(text);
  return m ? { r: Math.round(Number(m[1])), g: Math.round(Number(m[2])), b: Math.round(Number(m[3])) } : undefined;
}

export function css(c: Rgb, alpha = 1): string {
  return alpha >= 1 ? `rgb(${c.r}, ${c.g}, ${c.b})` : `rgba(${c.r}, ${c.g}, ${c.b}, ${alpha})`;
}

export function themeKind(): ThemeKind {
  const classes = document.body.classList;
  if (classes.contains('vscode-high-contrast-light')) return 'highContrastLight';
  if (classes.contains('vscode-high-contrast')) return 'highContrast';
  if (classes.contains('vscode-light')) return 'light';
  return 'dark';
}

export function isHighContrast(): boolean {
  const kind = themeKind();
  return kind === 'highContrast' || kind === 'highContrastLight';
}

/** The colours every canvas needs, resolved once per theme. */
export interface Palette {
  kind: ThemeKind;
  foreground: Rgb;
  background: Rgb;
  grid: string;
  font: string;
  series: Record<SeriesColour, Rgb>;
  /** How opaque raw (unsmoothed) lines are drawn under their smoothed curve. */
  rawAlpha: number;
}

let palette: Palette | undefined;

export function currentPalette(): Palette {
  if (palette) return palette;
  const foreground = themeVar('--vscode-editor-foreground');
  const kind = themeKind();
  const highContrast = kind === 'highContrast' || kind === 'highContrastLight';
  const family = getComputedStyle(document.body).fontFamily || 'sans-serif';
  palette = {
    kind,
    foreground,
    background: resolveColour('var(--vscode-editor-background, Canvas)'),
    grid: css(foreground, highContrast ? 0.3 : 0.1),
    font: `11px ${family}`,
    series: Object.fromEntries(SERIES_COLOURS.map((name) => [name, chartColour(name)])) as Record<SeriesColour, Rgb>,
    rawAlpha: highContrast ? 0.45 : 0.25,
  };
  return palette;
}

/** Calls `onChange` (debounced to a frame) whenever VS Code switches theme. */
export function watchTheme(onChange: () => void): void {
  let pending = false;
  const changed = (): void => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      palette = undefined;
      onChange();
    });
  };
  const observer = new MutationObserver(changed);
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['style', 'class'] });
  observer.observe(document.body, { attributes: true, attributeFilter: ['class', 'data-vscode-theme-kind'] });
}
