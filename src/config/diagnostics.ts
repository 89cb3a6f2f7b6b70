/** Where a value came from, so every message can point an operator at the exact spot. */
export interface SourcePos {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly col: number;
}

export type Severity = 'error' | 'warning';

export interface Diagnostic {
  readonly severity: Severity;
  readonly pos: SourcePos;
  readonly message: string;
  /** The fix, shown on its own line, when one is obvious. */
  readonly hint?: string;
}

export function error(pos: SourcePos, message: string, hint?: string): Diagnostic {
  return hint === undefined ? { severity: 'error', pos, message } : { severity: 'error', pos, message, hint };
}

export function warning(pos: SourcePos, message: string, hint?: string): Diagnostic {
  return hint === undefined ? { severity: 'warning', pos, message } : { severity: 'warning', pos, message, hint };
}

export function hasErrors(diagnostics: readonly Diagnostic[]): boolean {
  return diagnostics.some((d) => d.severity === 'error');
}

export function formatPos(pos: SourcePos): string {
  return `${pos.file}:${pos.line}:${pos.col}`;
}

/** `FILE:LINE:COL: error: message`, the form compilers use, so editors can jump to it. */
export function formatDiagnostic(d: Diagnostic): string {
  const head = `${formatPos(d.pos)}: ${d.severity}: ${d.message}`;
  return d.hint === undefined ? head : `${head}\n    hint: ${d.hint}`;
}

/** Stable order for reports: by file, then position. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  if (a.pos.file !== b.pos.file) return a.pos.file < b.pos.file ? -1 : 1;
  return a.pos.line - b.pos.line || a.pos.col - b.pos.col;
}
