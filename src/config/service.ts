/**
 * One service file: its name, its argdata document (everything but `supervise`) and its
 * `supervise` settings, checked for everything that can be checked from the text alone. Pure.
 */
import { error, formatPos, warning, type Diagnostic } from './diagnostics.js';
import { parseAddress, socketTypeProblem } from './address.js';
import { readSupervise, type Supervise } from './supervise.js';
import { describe, parseYamlDocument, SOCKET_HINT } from './yaml-document.js';
import type { ArgValue, FdValue, MapValue } from './values.js';

export const SERVICE_NAME = /^[A-Za-z0-9_.-]+$/;
export const SERVICE_SUFFIX = '.yaml';

/** Top-level keys the flag-style runner options are read from; their presence is what counts. */
export const FLAG_KEYS = ['dontwritebytecode', 'optimize', 'verbose', 'unbufferedstdio', 'debug', 'inspect', 'bytescompare'] as const;

export interface FdUse {
  /** Where in the document: `args.my_socket`, `path[0]`. */
  readonly keyPath: string;
  readonly node: FdValue;
}

export interface ServiceSource {
  readonly name: string;
  /** Absolute path of the service file. */
  readonly file: string;
  /** The argdata document: the file's top-level map without `supervise`. */
  readonly document: MapValue;
  readonly supervise: Supervise;
  /** Every `!fd`, `!file` and `!socket`, in document order. */
  readonly fds: readonly FdUse[];
}

export type FileNameVerdict = { readonly name: string } | { readonly skip: string } | { readonly invalid: string };

/** What a file in the services directory is: a service, a file to report and skip, or a bad name. */
export function classifyServiceFileName(fileName: string): FileNameVerdict {
  if (!fileName.endsWith(SERVICE_SUFFIX)) {
    const hint = fileName.endsWith('.yml') ? `; rename it to ${fileName.slice(0, -4)}${SERVICE_SUFFIX}` : '';
    return { skip: `not a service file (only *${SERVICE_SUFFIX} files are read)${hint}` };
  }
  const name = fileName.slice(0, -SERVICE_SUFFIX.length);
  if (!SERVICE_NAME.test(name)) {
    return { invalid: `service name "${name}" is not allowed; names use only letters, digits, "_", "." and "-"` };
  }
  return { name };
}

export interface ParsedService {
  readonly service: ServiceSource | undefined;
  readonly diagnostics: Diagnostic[];
}

/** `shownFile` names the file in messages; `baseDir` anchors relative `!file` paths. */
export function parseServiceFile(text: string, shownFile: string, name: string, baseDir?: string): ParsedService {
  const { value, diagnostics } = parseYamlDocument(text, shownFile, baseDir);
  if (value === undefined) return { service: undefined, diagnostics };
  if (value.kind !== 'map') {
    diagnostics.push(error(value.pos, `a service file is a map of keys (args, path, command, ...), not ${describe(value)}`));
    return { service: undefined, diagnostics };
  }
  const superviseEntry = value.entries.find((e) => e.key.kind === 'str' && e.key.value === 'supervise');
  const supervise = readSupervise(superviseEntry?.value, diagnostics);
  const document: MapValue = { ...value, entries: value.entries.filter((e) => e !== superviseEntry) };
  // A value already reported (an unknown tag, say) is not reported again for its shape.
  const reported = new Set(diagnostics.filter((d) => d.severity === 'error').map((d) => formatPos(d.pos)));
  checkRunnerKeys(document, supervise, (d) => {
    if (!reported.has(formatPos(d.pos))) diagnostics.push(d);
  });
  const fds = collectFds(document);
  for (const use of fds) checkSocket(use, diagnostics);
  return { service: { name, file: shownFile, document, supervise, fds }, diagnostics };
}

/** The keys the Python runner reads must have the shapes the CloudABI port gave them. */
function checkRunnerKeys(document: MapValue, supervise: Supervise, report: (d: Diagnostic) => void): void {
  for (const { key, value } of document.entries) {
    if (key.kind !== 'str') continue;
    switch (key.value) {
      case 'path':
        if (value.kind !== 'seq') {
          report(error(value.pos, `path must be a list of directories, got ${describe(value)}`, 'write path: [!file {path: /usr/local/lib/python3.11}]'));
        } else {
          for (const item of value.items) {
            if (item.kind !== 'fd' || item.fd.type !== 'file') {
              report(error(item.pos, `each path entry must be a !file directory, got ${describe(item)}`, 'write - !file {path: /some/directory}'));
            }
          }
        }
        break;
      case 'command':
        if (value.kind !== 'str') report(error(value.pos, `command must be Python source text, got ${describe(value)}`, 'write command: | followed by the code'));
        break;
      case 'script':
        if (value.kind !== 'fd' || value.fd.type !== 'file') report(error(value.pos, `script must be a !file, got ${describe(value)}`, 'write script: !file {path: app.py}'));
        break;
      case 'stderr':
        if (value.kind !== 'fd') report(error(value.pos, `stderr must be an !fd, got ${describe(value)}`, 'write stderr: !fd stderr'));
        break;
    }
  }
  const hasCode = document.entries.some((e) => e.key.kind === 'str' && (e.key.value === 'command' || e.key.value === 'script'));
  if (supervise.program.kind === 'python' && !hasCode) {
    report(warning(document.pos, 'no command or script: the Python runner will have nothing to run'));
  }
}

function checkSocket(use: FdUse, diagnostics: Diagnostic[]): void {
  const fd = use.node.fd;
  if (fd.type !== 'socket') return;
  const address = parseAddress(fd.address);
  if (typeof address === 'string') {
    diagnostics.push(error(use.node.pos, `!socket ${fd.mode}: ${address}`, fd.mode === 'bind' ? `write ${SOCKET_HINT}` : undefined));
    return;
  }
  const typeProblem = socketTypeProblem(address, fd.socketType);
  if (typeProblem) diagnostics.push(error(use.node.pos, `!socket ${fd.address}: ${typeProblem}`));
  const fileKeys = ([['fileMode', 'mode'], ['owner', 'owner'], ['group', 'group']] as const).filter(([k]) => fd[k] !== undefined).map(([, key]) => key);
  if (fileKeys.length > 0 && (address.family !== 'unix' || fd.mode !== 'bind')) {
    diagnostics.push(error(use.node.pos, `!socket ${fd.address}: ${fileKeys.join(', ')} ${fileKeys.length === 1 ? 'applies' : 'apply'} only to a unix socket the daemon binds`));
  }
}

export function collectFds(document: MapValue): FdUse[] {
  const found: FdUse[] = [];
  const visit = (value: ArgValue, keyPath: string): void => {
    if (value.kind === 'fd') found.push({ keyPath, node: value });
    else if (value.kind === 'map') {
      for (const { key, value: v } of value.entries) {
        visit(key, `${keyPath}<key>`);
        visit(v, keyPath === '' ? keyText(key) : `${keyPath}.${keyText(key)}`);
      }
    } else if (value.kind === 'seq') {
      value.items.forEach((item, i) => visit(item, `${keyPath}[${i}]`));
    }
  };
  visit(document, '');
  return found;
}

function keyText(key: ArgValue): string {
  return key.kind === 'str' ? key.value : 'raw' in key ? key.raw : `<${key.kind}>`;
}
