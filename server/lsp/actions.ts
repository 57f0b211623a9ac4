// Quick fixes: every diagnostic that carries a replacement (a misspelt key, value or module, an r
// too large) gets one code action that writes it over the diagnostic's range.
import { CodeActionKind, type CodeAction, type CodeActionParams, type Diagnostic } from 'vscode-languageserver';
import { SOURCE, type FixData } from './diagnostics';

function fixOf(diagnostic: Diagnostic): FixData | null {
  const data = diagnostic.data as Partial<FixData> | undefined;
  return diagnostic.source === SOURCE && typeof data?.replacement === 'string' && typeof data.title === 'string' ? (data as FixData) : null;
}

export function quickFixes(params: CodeActionParams): CodeAction[] {
  if (params.context.only && !params.context.only.some((kind) => CodeActionKind.QuickFix.startsWith(kind))) return [];
  return params.context.diagnostics.flatMap((diagnostic) => {
    const fix = fixOf(diagnostic);
    if (!fix) return [];
    return [
      {
        title: fix.title,
        kind: CodeActionKind.QuickFix,
        diagnostics: [diagnostic],
        isPreferred: true,
        edit: { changes: { [params.textDocument.uri]: [{ range: diagnostic.range, newText: fix.replacement }] } },
      },
    ];
  });
}
