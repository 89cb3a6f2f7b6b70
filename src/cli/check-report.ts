/** What `sockvisord check` prints: a per-service summary for people, or the same facts as JSON. */
import { formatAddress } from '../config/address.js';
import { formatDiagnostic, type Diagnostic } from '../config/diagnostics.js';
import type { LoadResult } from '../config/load.js';
import type { ServiceSpec } from '../config/spec.js';

function programText(s: ServiceSpec): string {
  if (s.program) return s.program.argv.join(' ');
  if (s.supervise.program.kind === 'exec') return s.supervise.program.argv.join(' ');
  return s.python ? `python (${s.python.executable}, Python ${s.python.version})` : 'python';
}

export function formatCheckText(result: LoadResult, display: (file: string) => string): string {
  const lines: string[] = [];
  for (const s of result.services) {
    lines.push(`${s.name}  (${display(s.file)})`);
    lines.push(`  program:  ${programText(s)}`);
    lines.push(`  replicas: ${s.supervise.replicas}`);
    lines.push(`  restart:  ${s.supervise.restart}${s.supervise.autostart ? '' : ' (autostart off)'}`);
    for (const k of s.sockets) {
      const resolved = formatAddress(k.address);
      lines.push(`  socket:   ${k.keyPath}  ${k.mode} ${k.written}${resolved !== k.written ? ` (${resolved})` : ''} ${k.socketType}`);
    }
    for (const f of s.files) {
      const from = f.mappedFrom ? ` (mapped from ${f.mappedFrom})` : f.declared !== f.path ? ` (${f.declared})` : '';
      lines.push(`  file:     ${f.keyPath}  ${f.path}${from}`);
    }
    if (s.program) {
      for (const f of s.program.fds) lines.push(`  fd ${f.fd}:     ${f.name} (${f.kind}${f.listening ? ', LISTEN_FDS' : ''})`);
      if (s.supervise.sandbox === 'off') lines.push('  sandbox:  off');
      else {
        const { exec, read, write } = s.program.grants;
        lines.push(`  grants:   read+execute ${exec.join(' ') || '(nothing)'}`);
        if (read.length > 0) lines.push(`            read ${read.join(' ')}`);
        if (write.length > 0) lines.push(`            read+write ${write.join(' ')}`);
      }
    }
    for (const w of s.warnings) lines.push(indent(formatDiagnostic(w)));
    lines.push('');
  }
  const errors = result.diagnostics.filter((d) => d.severity === 'error');
  const warnings = result.diagnostics.filter((d) => d.severity === 'warning');
  // Warnings not tied to a loaded service (skipped files, a broken file) still need showing.
  const shown = new Set(result.services.flatMap((s) => s.warnings));
  for (const w of warnings) if (!shown.has(w)) lines.push(formatDiagnostic(w));
  for (const e of errors) lines.push(formatDiagnostic(e));
  lines.push(
    `${result.services.length} service${result.services.length === 1 ? '' : 's'}, ${errors.length} error${errors.length === 1 ? '' : 's'}, ${warnings.length} warning${warnings.length === 1 ? '' : 's'}`,
  );
  return lines.join('\n') + '\n';
}

function indent(text: string): string {
  return text.split('\n').map((l) => `  ${l}`).join('\n');
}

function diagnosticJson(d: Diagnostic) {
  return { severity: d.severity, file: d.pos.file, line: d.pos.line, col: d.pos.col, message: d.message, ...(d.hint ? { hint: d.hint } : {}) };
}

export function checkJson(result: LoadResult, display: (file: string) => string): unknown {
  return {
    ok: result.ok,
    config: result.config.file ?? null,
    services: result.services.map((s) => ({
      name: s.name,
      file: display(s.file),
      program: s.program ? s.program.argv : s.supervise.program.kind === 'exec' ? s.supervise.program.argv : 'python',
      ...(s.program ? { executable: s.program.executable, fds: s.program.fds, grants: s.supervise.sandbox === 'off' ? null : s.program.grants } : {}),
      python: s.python ? { executable: s.python.executable, version: s.python.version } : null,
      replicas: s.supervise.replicas,
      restart: s.supervise.restart,
      autostart: s.supervise.autostart,
      sockets: s.sockets.map((k) => ({
        key: k.keyPath, mode: k.mode, address: k.written, resolved: formatAddress(k.address), type: k.socketType,
        backlog: k.backlog ?? null, line: k.pos.line, col: k.pos.col,
      })),
      files: s.files.map((f) => ({ key: f.keyPath, path: f.path, declared: f.declared, mappedFrom: f.mappedFrom ?? null, directory: f.isDirectory })),
      warnings: s.warnings.map(diagnosticJson),
    })),
    errors: result.diagnostics.filter((d) => d.severity === 'error').map(diagnosticJson),
    warnings: result.diagnostics.filter((d) => d.severity === 'warning').map(diagnosticJson),
  };
}
