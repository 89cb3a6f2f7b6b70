/**
 * fast-check arbitraries for service files: valid seed files, and mutations of them at the byte,
 * key, tag and value level. A case is plain data (seed index + mutation list), so fast-check can
 * shrink it and print it, and `applyMutations` turns it into the exact bytes the loader reads.
 */
import fs from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { ROOT } from '../helpers/cli.js';

const HEADER = '%TAG ! tag:nuxi.nl,2015:cloudabi/\n---\n';

/** Valid service files: the seed's examples, the demo's, and a few covering the rest of the format. */
export function seedFiles(): { name: string; text: string }[] {
  const fromDisk = ['test/fixtures/seed', 'etc/demo/sockvisor.d'].flatMap((dir) =>
    fs
      .readdirSync(path.join(ROOT, dir))
      .filter((f) => f.endsWith('.yaml'))
      .sort()
      .map((f) => ({ name: `${dir}/${f}`, text: fs.readFileSync(path.join(ROOT, dir, f), 'utf8') })),
  );
  const inline: Record<string, string> = {
    'supervise-all': `${HEADER}supervise:
  python: python3
  replicas: 3
  restart: always
  start_seconds: 0.5
  start_retries: 2
  backoff: {initial: 100ms, max: 5s}
  stop_signal: INT
  stop_timeout: 10s
  user: www
  group: www
  sandbox: best-effort
  env: {A: b, LC_CTYPE: C.UTF-8}
  directory: /srv/app
  autostart: false
  logs: {max_size: 1MiB, backups: 3}
  preload: [_ssl, _hashlib]
  standby: true
  writable: [/var/tmp/scratch]
  system_grants: true
dontwritebytecode:
optimize:
stderr: !fd stderr
path: [!file {path: /srv/app/lib}]
script: !file {path: app.py}
args:
  listener: !socket {bind: 127.0.0.1:8080, backlog: 128}
  count: 12
  ratio: 1.5
  enabled: true
  nothing: ~
  blob: !!binary aGVsbG8=
  when: 2001-12-14t21:59:43.10-05:00
  list: [1, two, 3.0, [nested, {deep: true}]]
`,
    'program-gunicorn': `${HEADER}supervise:
  program: [gunicorn, --bind, "fd://{fd:web}", --workers, "2", app:app]
  writable: [/var/tmp/scratch]
  sandbox: strict
path: [!file {path: /srv/app}]
config: !file {path: /srv/conf.ini}
args:
  api: !socket {bind: 127.0.0.1:9001}
  web: !socket {bind: 127.0.0.1:9000}
  upstream: !socket {connect: 127.0.0.1:5432}
`,
    'program-node': `${HEADER}supervise:
  program: [/usr/bin/node, /opt/app/server.js, "--listen={fd:args.http}", "--log={fd:stderr}"]
  sandbox: "off"
  system_grants: false
stderr: !fd stderr
path: [!file {path: /opt/app}]
args:
  http: !socket {bind: "[::1]:8081"}
  events: !socket {bind: /run/app/events.sock, type: dgram, mode: "0660", owner: www, group: www}
`,
    'sockets-every-kind': `${HEADER}stderr: !fd stderr
args:
  tcp4: !socket {bind: 127.0.0.1:0}
  tcp6: !socket {bind: "[::1]:8443", backlog: 0}
  any: !socket {bind: 0.0.0.0:8080}
  unix_stream: !socket {bind: /tmp/sv.sock, mode: "0600"}
  unix_dgram: !socket {bind: /tmp/sv-d.sock, type: dgram}
  unix_seq: !socket {bind: /tmp/sv-s.sock, type: seqpacket, owner: "1000", group: "1000"}
  udp: !socket {bind: 127.0.0.1:5353, type: dgram}
  db: !socket {connect: "db.internal:5432"}
  peer: !socket {connect: /run/peer.sock}
  raw: !fd 9
  out: !fd stdout
  conf: !file {path: /etc/app.conf}
command: |
  import sys
  print(sorted(sys.argdata))
`,
    'seed-header-flow': `%TAG !,2015:cloudabi/
stderr: !fd stderr
path: [!file {path: /usr/local/x86_64-unknown-cloudabi/lib/python3.6}]
args: {a: !socket {bind: 127.0.0.1:1}, b: !socket {connect: 127.0.0.1:2}, "quoted key": 'single', k: "dq\\tesc"}
command: "print(1)"
`,
    'full-tags': `%TAG ! tag:nuxi.nl,2015:cloudabi/
---
stderr: !<tag:nuxi.nl,2015:cloudabi/fd> stderr
args:
  s: !<tag:nuxi.nl,2015:cloudabi/socket> {bind: 127.0.0.1:7}
  n: !!int "42"
  f: !!float "2.5"
  t: !!str 12
  b: !!bool "true"
  m: !!map {a: 1}
  q: !!seq [1]
command: >
  print("folded")
`,
  };
  return [...fromDisk, ...Object.entries(inline).map(([name, text]) => ({ name: `inline/${name}`, text }))];
}

export const SEEDS = seedFiles();

const KEYS = [
  'args', 'path', 'command', 'script', 'stderr', 'supervise', 'program', 'python', 'replicas', 'restart', 'start_seconds',
  'start_retries', 'backoff', 'stop_signal', 'stop_timeout', 'user', 'group', 'sandbox', 'env', 'directory', 'autostart',
  'logs', 'preload', 'standby', 'writable', 'system_grants', 'bind', 'connect', 'type', 'backlog', 'mode', 'owner', 'dontwritebytecode',
  'optimize', 'verbose', 'replica', 'port', '', '"quoted"', '? complex', '-', '<<', 'null', '123', 'true',
];

const TAGS = [
  '!fd', '!file', '!socket', '!sockets', '!', '!!', '!!binary', '!!int', '!!float', '!!str', '!!bool', '!!null', '!!map', '!!seq',
  '!!set', '!!omap', '!!timestamp', '!<tag:nuxi.nl,2015:cloudabi/fd>', '!<tag:nuxi.nl,2015:cloudabi/nope>', '!<>', '!foo', '!e!x',
  '!fd!', '&anchor', '*anchor', '&a !fd', '!fd &a',
];

const VALUES = [
  '', '~', 'null', '""', "''", 'true', 'false', 'off', 'yes', '0', '-1', '-0', '1.5', '.inf', '-.inf', '.nan', '0x7fffffff',
  '0o777', '0777', '2147483648', '99999999999999999999999999999999', '1e309', '-99999999999999999999', '65535', '65536',
  '[]', '{}', '[1, [2, [3]]]', '{a: {b: {c: d}}}', '"\\u0000"', '"\\xff"', "'it''s'", '|', '>', '|-\n  x', '- a\n- b',
  'stdout', 'stderr', 'stdin', '9', '!fd 3', '!file {path: /x}', '!socket {bind: 127.0.0.1:1}', '!socket {connect: db.internal:1}',
  '127.0.0.1:70000', '"[::1]:80"', '"::1:80"', '/tmp/x.sock', 'relative.sock', 'localhost', 'multi.internal:53', '"[nope]:1"',
  '5s', '-5s', '1e400s', '10ms', '1h', '1MiB', '-1MiB', 'SIGKILL', 'KILL', 'NOTASIGNAL', '[gunicorn, "{fd:web}"]', '["{fd:nope}"]',
  '["{fd:}"]', '[/usr/bin/node, "{fd:args.http}"]', '[""]', '[a/b]', '"{fd:web"', 'python', 'strict', 'best-effort',
  '2001-12-14t21:59:43.10-05:00', '2001-13-45', '*alias', '&anc value', '? key', ': value', '- - -', '%TAG ! x', '---', '...',
];

/** Characters worth inserting: YAML structure, whitespace, NUL and other controls, non-ASCII. */
const CHARS = ['\0', '\t', '\n', '\r', '\r\n', ' ', ':', '-', '?', '[', ']', '{', '}', ',', '!', '&', '*', '%', '#', '|', '>', '"', "'", '\\', '@', '`', '\u0085', '\u2028', '\ufeff', 'é', '😀', '\u001b', '\u007f'];

export type Mutation =
  | { readonly op: 'insertBytes'; readonly at: number; readonly bytes: readonly number[] }
  | { readonly op: 'insertText'; readonly at: number; readonly text: string }
  | { readonly op: 'deleteBytes'; readonly at: number; readonly length: number }
  | { readonly op: 'replaceByte'; readonly at: number; readonly byte: number }
  | { readonly op: 'longLine'; readonly at: number; readonly length: number; readonly char: string }
  | { readonly op: 'renameKey'; readonly which: number; readonly key: string }
  | { readonly op: 'duplicateLine'; readonly which: number }
  | { readonly op: 'removeLine'; readonly which: number }
  | { readonly op: 'swapLines'; readonly which: number; readonly other: number }
  | { readonly op: 'indentLine'; readonly which: number; readonly by: number }
  | { readonly op: 'replaceTag'; readonly which: number; readonly tag: string }
  | { readonly op: 'addTag'; readonly which: number; readonly tag: string }
  | { readonly op: 'replaceValue'; readonly which: number; readonly value: string }
  | { readonly op: 'deepNesting'; readonly which: number; readonly depth: number; readonly style: 'flowSeq' | 'flowMap' | 'blockMap' | 'blockSeq' };

const pos = fc.nat({ max: 1_000_000 });
const smallWhich = fc.nat({ max: 1000 });

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ op: fc.constant('insertBytes' as const), at: pos, bytes: fc.array(fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 0x80, 0xbf, 0xc0, 0xc3, 0xe2, 0xed, 0xf0, 0xf4, 0xf8, 0xfe, 0xff)), { minLength: 1, maxLength: 8 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('insertText' as const), at: pos, text: fc.oneof(fc.constantFrom(...CHARS), fc.string({ maxLength: 6 }), fc.constantFrom(...VALUES)) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('deleteBytes' as const), at: pos, length: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('replaceByte' as const), at: pos, byte: fc.oneof(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 9, 10, 13, 0x20, 0x3a, 0x2d, 0xff)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('longLine' as const), at: pos, length: fc.integer({ min: 1000, max: 200_000 }), char: fc.constantFrom('x', ' ', '\t', '[', '{', '-', '#', 'é', '\0', ': ', '- ') }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('renameKey' as const), which: smallWhich, key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 8 })) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('duplicateLine' as const), which: smallWhich }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('removeLine' as const), which: smallWhich }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('swapLines' as const), which: smallWhich, other: smallWhich }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('indentLine' as const), which: smallWhich, by: fc.integer({ min: -8, max: 8 }) }) },
  { weight: 3, arbitrary: fc.record({ op: fc.constant('replaceTag' as const), which: smallWhich, tag: fc.oneof(fc.constantFrom(...TAGS), fc.string({ maxLength: 6 }).map((s) => `!${s}`)) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('addTag' as const), which: smallWhich, tag: fc.constantFrom(...TAGS) }) },
  { weight: 4, arbitrary: fc.record({ op: fc.constant('replaceValue' as const), which: smallWhich, value: fc.oneof(fc.constantFrom(...VALUES), fc.string({ maxLength: 12 }), fc.bigInt().map(String), fc.double().map(String)) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('deepNesting' as const), which: smallWhich, depth: fc.integer({ min: 1, max: 5000 }), style: fc.constantFrom('flowSeq' as const, 'flowMap' as const, 'blockMap' as const, 'blockSeq' as const) }) },
);

export interface ConfigCase {
  readonly seed: number;
  readonly mutations: readonly Mutation[];
  /** Also run this case through loadConfig on a temporary directory. */
  readonly viaLoader: boolean;
}

export function configCase(loadEvery: number): fc.Arbitrary<ConfigCase> {
  return fc.record({
    seed: fc.nat({ max: SEEDS.length - 1 }),
    mutations: fc.array(mutation, { minLength: 0, maxLength: 6 }),
    viaLoader: loadEvery <= 1 ? fc.constant(true) : fc.nat({ max: loadEvery - 1 }).map((n) => n === 0),
  });
}

function lineStarts(buf: Buffer): number[] {
  const starts = [0];
  for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) starts.push(i + 1);
  return starts;
}

function splitLines(buf: Buffer): Buffer[] {
  const starts = lineStarts(buf);
  return starts.map((s, i) => buf.subarray(s, i + 1 < starts.length ? starts[i + 1] : buf.length));
}

/** The n-th (mod count) match of `re` in the text, as a byte range of the match's group 1 (or all). */
function nthMatch(buf: Buffer, re: RegExp, which: number): { start: number; end: number } | undefined {
  const text = buf.toString('latin1'); // one char per byte, so indexes are byte offsets
  const matches = [...text.matchAll(re)];
  if (matches.length === 0) return undefined;
  const m = matches[which % matches.length]!;
  const group = m[1] ?? m[0];
  const start = m.index + m[0].indexOf(group);
  return { start, end: start + group.length };
}

function splice(buf: Buffer, start: number, end: number, insert: Buffer | string): Buffer {
  return Buffer.concat([buf.subarray(0, start), typeof insert === 'string' ? Buffer.from(insert, 'utf8') : insert, buf.subarray(end)]);
}

function nest(depth: number, style: 'flowSeq' | 'flowMap' | 'blockMap' | 'blockSeq'): string {
  switch (style) {
    case 'flowSeq': return '['.repeat(depth) + 'x' + ']'.repeat(depth);
    case 'flowMap': return '{a: '.repeat(depth) + 'x' + '}'.repeat(depth);
    // Block styles are capped: each level is a line, and indentation grows with the depth.
    case 'blockMap': return Array.from({ length: Math.min(depth, 400) }, (_, i) => `\n${'  '.repeat(i + 1)}k${i}:`).join('') + ' x';
    case 'blockSeq': return Array.from({ length: Math.min(depth, 400) }, (_, i) => `\n${'  '.repeat(i + 1)}-`).join('') + ' x';
  }
}

export function applyMutation(buf: Buffer, m: Mutation): Buffer {
  const at = (n: number) => (buf.length === 0 ? 0 : n % (buf.length + 1));
  switch (m.op) {
    case 'insertBytes': return splice(buf, at(m.at), at(m.at), Buffer.from(m.bytes));
    case 'insertText': return splice(buf, at(m.at), at(m.at), m.text);
    case 'deleteBytes': {
      const s = at(m.at);
      return splice(buf, s, Math.min(buf.length, s + m.length), '');
    }
    case 'replaceByte': {
      if (buf.length === 0) return Buffer.from([m.byte]);
      const s = m.at % buf.length;
      return splice(buf, s, s + 1, Buffer.from([m.byte]));
    }
    case 'longLine': return splice(buf, at(m.at), at(m.at), m.char.repeat(Math.ceil(m.length / m.char.length)));
    case 'renameKey': {
      const r = nthMatch(buf, /^[ \t]*(?:- )?([^\s:#][^:\n]*?):(?=\s|$)/gm, m.which);
      return r ? splice(buf, r.start, r.end, m.key) : buf;
    }
    case 'duplicateLine':
    case 'removeLine':
    case 'swapLines':
    case 'indentLine': {
      const lines = splitLines(buf);
      const i = m.which % lines.length;
      if (m.op === 'duplicateLine') lines.splice(i, 0, lines[i]!);
      else if (m.op === 'removeLine') lines.splice(i, 1);
      else if (m.op === 'swapLines') {
        const j = m.other % lines.length;
        [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      } else {
        const line = lines[i]!;
        lines[i] = m.by >= 0 ? Buffer.concat([Buffer.from(' '.repeat(m.by)), line]) : line.subarray(Math.min(-m.by, line.length - line.toString('latin1').trimStart().length));
      }
      return Buffer.concat(lines);
    }
    case 'replaceTag': {
      const r = nthMatch(buf, /(![^\s,[\]{}]*)/g, m.which);
      return r ? splice(buf, r.start, r.end, m.tag) : buf;
    }
    case 'addTag': {
      const r = nthMatch(buf, /(?::|^[ \t]*-) ()/gm, m.which);
      return r ? splice(buf, r.start, r.start, `${m.tag} `) : buf;
    }
    case 'replaceValue': {
      const r = nthMatch(buf, /(?::|^[ \t]*-|[[,]) ([^\n,\]}#]*)/gm, m.which);
      return r ? splice(buf, r.start, r.end, m.value) : buf;
    }
    case 'deepNesting': {
      const r = nthMatch(buf, /(?::|^[ \t]*-) ([^\n#]*)/gm, m.which);
      return r ? splice(buf, r.start, r.end, nest(m.depth, m.style)) : buf;
    }
  }
}

/** The bytes of a case: the seed file with every mutation applied in order. */
export function caseBytes(c: ConfigCase): Buffer {
  return c.mutations.reduce(applyMutation, Buffer.from(SEEDS[c.seed]!.text, 'utf8'));
}
