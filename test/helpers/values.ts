/** Small builders for ArgValue trees in tests; positions and source text do not matter there. */
import type { ArgValue, FdValue, MapEntry } from '../../src/config/values.js';

const pos = { file: 't', line: 1, col: 1 };

export const v = {
  null: (): ArgValue => ({ kind: 'null', pos, raw: '' }),
  bool: (value: boolean): ArgValue => ({ kind: 'bool', value, pos, raw: '' }),
  int: (value: bigint): ArgValue => ({ kind: 'int', value, pos, raw: '' }),
  float: (value: number): ArgValue => ({ kind: 'float', value, pos, raw: '' }),
  str: (value: string): ArgValue => ({ kind: 'str', value, pos, raw: '' }),
  binary: (bytes: number[]): ArgValue => ({ kind: 'binary', value: Uint8Array.from(bytes), pos, raw: '' }),
  timestamp: (value: bigint): ArgValue => ({ kind: 'timestamp', value, pos, raw: '' }),
  fd: (number: number): FdValue => ({ kind: 'fd', fd: { type: 'number', number }, pos }),
  seq: (...items: ArgValue[]): ArgValue => ({ kind: 'seq', items, pos }),
  map: (...pairs: [ArgValue, ArgValue][]): ArgValue => ({
    kind: 'map',
    entries: pairs.map(([key, value]): MapEntry => ({ key, value })),
    pos,
  }),
};
