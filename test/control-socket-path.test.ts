import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { parseDaemonConfig } from '../src/config/daemon-config.js';
import { quickControlSocket } from '../src/control/socket-path.js';

const FILE = '/etc/sockvisor/sockvisor.yaml';

describe('the control socket path without the YAML parser', () => {
  const agreeing = [
    'services: sockvisor.d\ncontrol:\n  socket: /var/run/sockvisor.sock\n  mode: "0600"\n',
    'control:\n  mode: "0660"\n  group: wheel\n  socket: ../run/ctl.sock   # relative to this file\npidfile: x.pid\n',
    'control: {socket: ctl.sock, mode: "0600"}\n',
    'control: {mode: "0600"}\n',
    "control:\n  socket: '/var/run/with space.sock'\n",
    'control:\n  socket: "/var/run/q.sock"\n',
    'services: d\n# control: {socket: /not/this}\n',
    'control:\n\n  # comment\n  socket: /a.sock\nlogs:\n  dir: /x\n',
  ];
  for (const text of agreeing) {
    test(`agrees with the full parser: ${JSON.stringify(text).slice(0, 60)}`, () => {
      const quick = quickControlSocket(text, FILE);
      assert.notEqual(quick, undefined, 'a plain form is read without the parser');
      assert.equal(quick ?? '/var/run/sockvisor.sock', parseDaemonConfig(text, FILE).config.control.socket);
    });
  }

  test('anything less plain is left to the parser', () => {
    for (const text of [
      'control: &c {socket: /a}\n',
      '%TAG ! tag:x\n---\ncontrol: {socket: /a}\n',
      'control:\n  socket: >\n    /folded\n',
      'control:\n  socket: "/esc\\t"\n',
      'control: {socket: [a]}\n',
      'control:\n    socket: /a\n  mode: "0600"\n',
    ]) assert.equal(quickControlSocket(text, FILE), undefined, text);
  });
});
