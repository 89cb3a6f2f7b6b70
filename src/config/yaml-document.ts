/**
 * Reads one YAML text into a typed argdata value, the way cloudabi-run read a service file:
 * CloudABI tags by full URI, 2016 scalar typing, no aliases. Pure: text in, value and diagnostics out.
 */
import path from 'node:path';
import * as YAML from 'yaml';
import { error, warning, type Diagnostic, type SourcePos } from './diagnostics.js';
import { CORE_TAG_PREFIX, typePlainScalar, typeTaggedScalar, type ScalarType } from './scalars.js';
import type { ArgValue, FdRef, MapValue, SocketType } from './values.js';

export const CLOUDABI_TAG_PREFIX = 'tag:nuxi.nl,2015:cloudabi/';
const CLOUDABI_TAGS = ['fd', 'file', 'socket'] as const;
type CloudabiTag = (typeof CLOUDABI_TAGS)[number];

/** The header the seed-era examples carry: it lacks `tag:nuxi.nl` and the `---` line. */
const SEED_HEADER = /^%TAG[ \t]+!,2015:cloudabi\/[ \t]*$/m;

export const SOCKET_HINT = '!socket {bind: 127.0.0.1:8080}';
export const FILE_HINT = '!file {path: /some/directory}';

export interface ParsedYaml {
  /** Undefined when the text could not be read as one YAML document. */
  readonly value: ArgValue | undefined;
  readonly diagnostics: Diagnostic[];
}

/**
 * `file` names the file in messages; `baseDir` is where relative `!file` paths start (the file's
 * own directory by default).
 */
export function parseYamlDocument(text: string, file: string, baseDir = path.dirname(path.resolve(file))): ParsedYaml {
  const diagnostics: Diagnostic[] = [];
  // Positions from the text itself: yaml's LineCounter misses the line starts its lexer skips.
  const lineStarts = [0];
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) lineStarts.push(i + 1);
  const at = (offset: number): SourcePos => {
    const o = Math.max(0, Math.min(offset, text.length));
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid]! <= o) lo = mid;
      else hi = mid - 1;
    }
    return { file, line: lo + 1, col: o - lineStarts[lo]! + 1 };
  };

  // Blank the seed-era directive out (same length, so every offset stays put) and treat its
  // local tags as the real ones, exactly as if `%TAG ! tag:nuxi.nl,2015:cloudabi/` and `---` stood there.
  let source = text;
  const seed = SEED_HEADER.exec(text);
  if (seed) {
    source = text.slice(0, seed.index) + '#' + ' '.repeat(seed[0].length - 1) + text.slice(seed.index + seed[0].length);
  }

  const deep = nestingBeyondLimit(source);
  if (deep !== undefined) {
    diagnostics.push(error(at(deep), `nested more than ${MAX_NESTING} levels deep here; a service file never needs that`, 'this looks like a damaged or hostile file'));
    return { value: undefined, diagnostics };
  }
  let docs: ReturnType<typeof YAML.parseAllDocuments>;
  // A hostile file can make the parser build an error per character; their stack traces are
  // what would make it slow, and nothing reads them.
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    docs = YAML.parseAllDocuments(source, {
      schema: 'failsafe',
      prettyErrors: false,
      uniqueKeys: true,
      strict: true,
      // Core tags are typed by our own rules (scalars.ts), from the text as written.
      resolveKnownTags: false,
    });
  } catch (e) {
    // Nesting deep enough to exhaust the parser's stack: an error in the file, not in the loader.
    diagnostics.push(error({ file, line: 1, col: 1 }, `YAML: the document cannot be read (${(e as Error).message}); is it nested thousands of levels deep?`));
    return { value: undefined, diagnostics };
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
  if (seed) {
    diagnostics.push(
      warning(
        at(seed.index),
        'seed-era header "%TAG !,2015:cloudabi/" read as "%TAG ! tag:nuxi.nl,2015:cloudabi/" followed by "---"',
        'write "%TAG ! tag:nuxi.nl,2015:cloudabi/" and "---" on the next line',
      ),
    );
  }
  const docList = Array.isArray(docs) ? docs : [];
  if (docList.length === 0) {
    diagnostics.push(error({ file, line: 1, col: 1 }, 'the file holds no YAML document'));
    return { value: undefined, diagnostics };
  }
  if (docList.length > 1) {
    const second = docList[1]!;
    diagnostics.push(error(at(second.range?.[0] ?? 0), 'a service file holds exactly one YAML document; found a second one here'));
  }
  const doc = docList[0]!;
  let syntaxBroken = false;
  for (const e of doc.errors) {
    syntaxBroken = true;
    diagnostics.push(error(at(e.pos[0]), `YAML: ${firstLine(e.message)}`));
  }
  if (syntaxBroken) return { value: undefined, diagnostics };

  const reader = new NodeReader(source, baseDir, at, diagnostics, seed !== null);
  let value: ArgValue | undefined;
  try {
    value = doc.contents === null ? undefined : reader.read(doc.contents);
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    diagnostics.push(error({ file, line: 1, col: 1 }, `the document is nested too deeply to read (${e.message})`));
    return { value: undefined, diagnostics };
  }
  if (doc.contents === null) diagnostics.push(error({ file, line: 1, col: 1 }, 'the YAML document is empty'));
  return { value, diagnostics };
}

/**
 * How deep the parser would have to recurse, estimated from the text: open flow brackets, plus
 * block indicators (`key: `, `- `) stacked on one line. Thousands of levels exhaust the parser's
 * stack, and V8 can then abort the whole process compiling a regular expression, so such a file
 * is refused before it is parsed. The estimate counts brackets inside quotes too; no real service
 * file comes near the limit either way.
 */
const MAX_NESTING = 256;

function nestingBeyondLimit(text: string): number | undefined {
  let flow = 0;
  let onLine = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b || c === 0x7b) flow++;
    else if ((c === 0x5d || c === 0x7d) && flow > 0) flow--;
    else if (c === 0x0a) onLine = 0;
    else if ((c === 0x3a || c === 0x2d) && (text.charCodeAt(i + 1) === 0x20 || text.charCodeAt(i + 1) === 0x0a)) onLine++;
    if (flow > MAX_NESTING || onLine > MAX_NESTING) return i;
  }
  return undefined;
}

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+.*$/, '');
}

class NodeReader {
  private warnedLocalTags: boolean;

  constructor(
    private readonly source: string,
    private readonly baseDir: string,
    private readonly at: (offset: number) => SourcePos,
    private readonly diagnostics: Diagnostic[],
    seedHeader: boolean,
  ) {
    // The seed header warning already says how local tags are read.
    this.warnedLocalTags = seedHeader;
  }

  read(node: unknown): ArgValue {
    if (YAML.isAlias(node)) {
      const pos = this.at(node.range![0]);
      this.diagnostics.push(error(pos, `alias *${node.source} is not allowed in a service file`, 'write the value out in full'));
      return { kind: 'null', pos, raw: '' };
    }
    if (YAML.isScalar(node)) return this.readScalar(node);
    if (YAML.isMap(node)) return this.readMap(node);
    if (YAML.isSeq(node)) return this.readSeq(node);
    // The composer only yields the node kinds above; anything else is a bug in our reading of it.
    throw new Error(`unexpected YAML node ${String(node)}`);
  }

  /** The tag's own position when the node has one, since that is what an operator looks for. */
  private posOf(node: YAML.Node): SourcePos {
    const start = node.range![0];
    if (node.tag !== undefined) {
      const before = this.source.slice(Math.max(0, start - 400), start);
      const m = /(![^\s,[\]{}]*)(?:[ \t]+&[^\s,[\]{}]+)?(?:[ \t]*(?:#[^\n]*)?\r?\n)*[ \t]*$/.exec(before);
      if (m) return this.at(start - before.length + m.index);
    }
    return this.at(start);
  }

  private cloudabiTag(tag: string, pos: SourcePos): CloudabiTag | undefined {
    if (tag.startsWith(CLOUDABI_TAG_PREFIX)) {
      const name = tag.slice(CLOUDABI_TAG_PREFIX.length);
      return (CLOUDABI_TAGS as readonly string[]).includes(name) ? (name as CloudabiTag) : undefined;
    }
    const local = tag.startsWith('!') ? tag.slice(1) : undefined;
    if (local !== undefined && (CLOUDABI_TAGS as readonly string[]).includes(local)) {
      if (!this.warnedLocalTags) {
        this.warnedLocalTags = true;
        this.diagnostics.push(
          warning(pos, `${tag} used without a %TAG directive; read as ${CLOUDABI_TAG_PREFIX}${local}`, `start the file with "%TAG ! ${CLOUDABI_TAG_PREFIX}" and "---"`),
        );
      }
      return local as CloudabiTag;
    }
    return undefined;
  }

  private unknownTag(tag: string, pos: SourcePos): void {
    this.diagnostics.push(
      error(pos, `unknown tag ${displayTag(tag)}`, `CloudABI tags are !fd, !file and !socket under "%TAG ! ${CLOUDABI_TAG_PREFIX}"`),
    );
  }

  private readScalar(node: YAML.Scalar): ArgValue {
    const pos = this.posOf(node);
    const raw = String(node.value ?? '');
    const tag = node.tag;
    if (tag === undefined || tag === '!') {
      const typed: ScalarType = node.type === 'PLAIN' && tag === undefined ? typePlainScalar(raw) : { kind: 'str', value: raw };
      return { ...typed, pos, raw } as ArgValue;
    }
    if (tag.startsWith(CORE_TAG_PREFIX)) {
      const name = tag.slice(CORE_TAG_PREFIX.length);
      if (name === 'binary') return this.readBinary(raw, pos);
      const typed = typeTaggedScalar(name, raw);
      if (typeof typed === 'string') {
        if (name === 'map' || name === 'seq') this.diagnostics.push(error(pos, `!!${name} cannot tag a scalar`));
        else this.diagnostics.push(error(pos, typed));
        return { kind: 'str', value: raw, pos, raw };
      }
      return { ...typed, pos, raw } as ArgValue;
    }
    const cloudabi = this.cloudabiTag(tag, pos);
    if (cloudabi === 'fd') return this.readFdScalar(raw, pos);
    if (cloudabi === 'socket') {
      this.diagnostics.push(
        error(pos, raw === '' ? '!socket needs an address' : `!socket takes a map, not "${raw}"`, `write ${SOCKET_HINT} (or {connect: host:port})`),
      );
    } else if (cloudabi === 'file') {
      this.diagnostics.push(error(pos, raw === '' ? '!file needs a path' : `!file takes a map, not "${raw}"`, `write ${FILE_HINT}`));
    } else {
      this.unknownTag(tag, pos);
    }
    return { kind: 'null', pos, raw };
  }

  private readBinary(raw: string, pos: SourcePos): ArgValue {
    const compact = raw.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact) || compact.length % 4 !== 0) {
      this.diagnostics.push(error(pos, '!!binary value is not valid base64'));
      return { kind: 'binary', value: new Uint8Array(), pos, raw };
    }
    return { kind: 'binary', value: new Uint8Array(Buffer.from(compact, 'base64')), pos, raw };
  }

  private readFdScalar(raw: string, pos: SourcePos): ArgValue {
    let fd: FdRef | undefined;
    if (raw === 'stdout' || raw === 'stderr') fd = { type: 'stdio', stream: raw };
    else if (/^[0-9]+$/.test(raw) && Number(raw) <= 0x7fffffff) fd = { type: 'number', number: Number(raw) };
    if (fd === undefined) {
      this.diagnostics.push(error(pos, `!fd takes stdout, stderr or an fd number, not "${raw}"`, 'write !fd stdout'));
      return { kind: 'null', pos, raw };
    }
    return { kind: 'fd', fd, pos };
  }

  private readMap(node: YAML.YAMLMap): ArgValue {
    const pos = this.posOf(node);
    const entries = node.items.map((pair) => ({
      key: pair.key === null ? { kind: 'null' as const, pos, raw: '' } : this.read(pair.key),
      value: pair.value === null ? this.emptyValueAfter(pair.key, pos) : this.read(pair.value),
    }));
    const map: MapValue = { kind: 'map', entries, pos };
    const tag = node.tag;
    if (tag === undefined || tag === '!' || tag === `${CORE_TAG_PREFIX}map`) return map;
    const cloudabi = this.cloudabiTag(tag, pos);
    if (cloudabi === 'file') return this.readFileMap(map);
    if (cloudabi === 'socket') return this.readSocketMap(map);
    if (cloudabi === 'fd') {
      this.diagnostics.push(error(pos, '!fd takes stdout, stderr or an fd number, not a map', 'write !fd stdout'));
    } else {
      this.unknownTag(tag, pos);
    }
    return map;
  }

  /** `key:` with nothing after it is null, placed just after the key. */
  private emptyValueAfter(key: unknown, fallback: SourcePos): ArgValue {
    const pos = YAML.isNode(key) && key.range ? this.at(key.range[1]) : fallback;
    return { kind: 'null', pos, raw: '' };
  }

  private readSeq(node: YAML.YAMLSeq): ArgValue {
    const pos = this.posOf(node);
    const items = node.items.map((item) => (item === null ? ({ kind: 'null', pos, raw: '' } as const) : this.read(item)));
    const tag = node.tag;
    if (tag !== undefined && tag !== '!' && tag !== `${CORE_TAG_PREFIX}seq`) {
      const cloudabi = this.cloudabiTag(tag, pos);
      if (cloudabi === 'socket') this.diagnostics.push(error(pos, '!socket takes a map, not a sequence', `write ${SOCKET_HINT}`));
      else if (cloudabi === 'file') this.diagnostics.push(error(pos, '!file takes a map, not a sequence', `write ${FILE_HINT}`));
      else if (cloudabi === 'fd') this.diagnostics.push(error(pos, '!fd takes stdout, stderr or an fd number, not a sequence'));
      else this.unknownTag(tag, pos);
    }
    return { kind: 'seq', items, pos };
  }

  private readFileMap(map: MapValue): ArgValue {
    let declared: string | undefined;
    for (const { key, value } of map.entries) {
      if (key.kind === 'str' && key.value === 'path') {
        if (value.kind === 'str' && value.value !== '') declared = value.value;
        else this.diagnostics.push(error(value.pos, `!file path must be a non-empty string, not ${describe(value)}`));
      } else {
        this.diagnostics.push(error(key.pos, `unknown key ${describeKey(key)} in !file; the only key is path`, `write ${FILE_HINT}`));
      }
    }
    if (declared === undefined) {
      if (!map.entries.some((e) => e.key.kind === 'str' && e.key.value === 'path')) {
        this.diagnostics.push(error(map.pos, '!file needs a path', `write ${FILE_HINT}`));
      }
      return { kind: 'null', pos: map.pos, raw: '' };
    }
    const absolute = path.resolve(this.baseDir, declared);
    return { kind: 'fd', fd: { type: 'file', path: absolute, declared }, pos: map.pos };
  }

  private readSocketMap(map: MapValue): ArgValue {
    let mode: 'bind' | 'connect' | undefined;
    let address: string | undefined;
    let socketType: SocketType = 'stream';
    let backlog: number | undefined;
    const unixFile: { fileMode?: number; owner?: string; group?: string } = {};
    let ok = true;
    for (const { key, value } of map.entries) {
      const name = key.kind === 'str' ? key.value : undefined;
      if (name === 'bind' || name === 'connect') {
        if (mode !== undefined) {
          this.diagnostics.push(error(key.pos, `!socket has both ${mode} and ${name}; give one`));
          ok = false;
        } else if (value.kind === 'str' && value.value !== '') {
          mode = name;
          address = value.value;
        } else {
          this.diagnostics.push(error(value.pos, `!socket ${name} must be an address such as 127.0.0.1:8080, [::1]:8080 or /var/run/app.sock, not ${describe(value)}`));
          ok = false;
          mode = name;
        }
      } else if (name === 'type') {
        if (value.kind === 'str' && (value.value === 'stream' || value.value === 'dgram' || value.value === 'seqpacket')) {
          socketType = value.value;
        } else {
          this.diagnostics.push(error(value.pos, `!socket type must be stream, dgram or seqpacket, not ${describe(value)}`));
          ok = false;
        }
      } else if (name === 'backlog') {
        if (value.kind === 'int' && value.value >= 0n && value.value <= 65535n) {
          backlog = Number(value.value);
        } else {
          this.diagnostics.push(error(value.pos, `!socket backlog must be an integer from 0 to 65535, not ${describe(value)}`));
          ok = false;
        }
      } else if (name === 'mode') {
        const m = /^0?o?([0-7]{3,4})$/.exec('raw' in value ? value.raw : '');
        if (m) unixFile.fileMode = Number.parseInt(m[1]!, 8);
        else {
          this.diagnostics.push(error(value.pos, `!socket mode must be an octal file mode such as "0660", not ${describe(value)}`));
          ok = false;
        }
      } else if (name === 'owner' || name === 'group') {
        if ((value.kind === 'str' && value.value !== '') || (value.kind === 'int' && value.value >= 0n)) unixFile[name] = value.raw;
        else {
          this.diagnostics.push(error(value.pos, `!socket ${name} must be a ${name === 'owner' ? 'user' : 'group'} name or id, not ${describe(value)}`));
          ok = false;
        }
      } else {
        this.diagnostics.push(error(key.pos, `unknown key ${describeKey(key)} in !socket; keys are bind, connect, type, backlog, and for unix paths mode, owner and group`));
        ok = false;
      }
    }
    if (mode === undefined) {
      this.diagnostics.push(error(map.pos, '!socket needs bind or connect', `write ${SOCKET_HINT}`));
      ok = false;
    }
    if (!ok || mode === undefined || address === undefined) return { kind: 'null', pos: map.pos, raw: '' };
    return { kind: 'fd', fd: { type: 'socket', mode, address, socketType, backlog, ...unixFile }, pos: map.pos };
  }
}

function displayTag(tag: string): string {
  if (tag.startsWith(CORE_TAG_PREFIX)) return `!!${tag.slice(CORE_TAG_PREFIX.length)}`;
  return tag.startsWith('!') ? tag : `!<${tag}>`;
}

/** A value as an operator would recognise it in a message. */
export function describe(value: ArgValue): string {
  switch (value.kind) {
    case 'map':
      return 'a map';
    case 'seq':
      return 'a sequence';
    case 'fd':
      return `an ${value.fd.type === 'socket' ? '!socket' : value.fd.type === 'file' ? '!file' : '!fd'}`;
    case 'null':
      return value.raw === '' ? 'nothing' : `"${value.raw}" (null)`;
    case 'str':
      return `"${value.value}"`;
    case 'binary':
      return 'binary data';
    default:
      return `${value.raw} (${value.kind === 'int' ? 'an integer' : value.kind === 'float' ? 'a number' : value.kind === 'bool' ? 'a boolean' : 'a timestamp'})`;
  }
}

export function describeKey(key: ArgValue): string {
  return key.kind === 'str' ? `"${key.value}"` : describe(key);
}
