// The page VS Code shows for the training panel, built from a string so that the extension and
// the browser tests serve exactly the same markup and CSP. No DOM or Node types: the extension
// imports it, and so does the test harness.

/** The built files in dist/webview/, relative to that folder. */
export const PANEL_ASSETS = { script: 'panel.js', style: 'panel.css' } as const;

export interface WebviewHtml {
  /** `webview.cspSource`. */
  cspSource: string;
  /** A fresh random nonce per page (e.g. 16 random bytes, base64): the only scripts that run. */
  nonce: string;
  /** `webview.asWebviewUri(…/dist/webview/panel.js)`, as a string. */
  scriptUri: string;
  /** `webview.asWebviewUri(…/dist/webview/panel.css)`, as a string. */
  styleUri: string;
  title?: string;
}

/**
 * Strict: nothing loads but our script (by nonce) and our stylesheet (from the extension's own
 * resources); no inline script, no inline style attribute, no remote anything.
 */
export function contentSecurityPolicy(cspSource: string, nonce: string): string {
  return [`default-src 'none'`, `script-src 'nonce-${nonce}'`, `style-src ${cspSource} 'nonce-${nonce}'`].join('; ');
}

export function webviewHtml(page: WebviewHtml): string {
  const a = escapeAttribute;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${a(contentSecurityPolicy(page.cspSource, page.nonce))}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="${a(page.styleUri)}">
<title>${a(page.title ?? 'MoSLoRA Training')}</title>
</head>
<body>
<script nonce="${a(page.nonce)}" src="${a(page.scriptUri)}"></script>
</body>
</html>
`;
}

function escapeAttribute(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
