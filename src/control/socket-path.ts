/**
 * The control socket path from a daemon config's text, without loading the YAML parser: for the
 * plain forms operators write, `control:` with an indented `socket:` line or `control: {socket:
 * PATH}`. Anything less plain returns undefined, and the caller parses the YAML properly. This
 * keeps `sockvisorctl -c FILE` start-up close to Node's own. Pure.
 */
import path from 'node:path';

const PLAIN_VALUE = /^[^\s'"[\]{}&*!|>%@`#,][^#]*?$/;

function scalar(raw: string): string | undefined {
  const text = raw.trim();
  const quoted = /^'([^']*)'$/.exec(text) ?? /^"([^"\\]*)"$/.exec(text);
  if (quoted) return quoted[1];
  return PLAIN_VALUE.test(text) ? text : undefined;
}

/** The socket path, `null` when the config leaves it at its default, or undefined when unsure. */
export function quickControlSocket(text: string, configFile: string): string | null | undefined {
  // Documents, anchors, tags and merges are beyond a line scan.
  if (/^(---|%)/m.test(text) || /[&*!]\w/.test(text)) return undefined;
  const lines = text.split('\n');
  const at = lines.findIndex((l) => /^control\s*:/.test(l));
  if (at === -1) return /^control\b/m.test(text) ? undefined : null;
  if (lines.slice(at + 1).some((l) => /^control\s*:/.test(l))) return undefined;
  const head = lines[at]!.replace(/\s+#.*$/, '');
  let value: string | undefined;
  const flow = /^control\s*:\s*\{(.*)\}\s*$/.exec(head);
  if (flow) {
    if (/[{}[\]]/.test(flow[1]!) || /"[^"]*,|'[^']*,/.test(flow[1]!)) return undefined;
    const pairs = flow[1]!.split(',').map((p) => /^\s*([\w-]+)\s*:\s*(.*?)\s*$/.exec(p));
    if (pairs.some((p) => p === null)) return undefined;
    const socket = pairs.find((p) => p![1] === 'socket');
    if (!socket) return null;
    value = scalar(socket[2]!);
  } else if (/^control\s*:\s*$/.test(head)) {
    let indent: string | undefined;
    for (const line of lines.slice(at + 1)) {
      if (/^\s*(#.*)?$/.test(line)) continue;
      const m = /^(\s+)([\w-]+)\s*:(.*)$/.exec(line);
      if (!m) break;
      indent ??= m[1];
      if (m[1] !== indent) {
        if (m[1]!.length > indent!.length) continue; // deeper: part of another key's value
        return undefined;
      }
      if (m[2] === 'socket') {
        value = scalar(m[3]!.replace(/\s+#.*$/, ''));
        if (value === undefined) return undefined;
      }
    }
    if (value === undefined) return null;
  } else {
    return undefined;
  }
  if (value === undefined || value === '') return undefined;
  return path.resolve(path.dirname(path.resolve(configFile)), value);
}
