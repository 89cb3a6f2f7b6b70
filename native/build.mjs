#!/usr/bin/env node
// Builds the native addon at install time, offline: node-gyp is pointed at the running Node's
// own headers, and missing build tools are named before node-gyp fails in less helpful ways.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function onPath(name) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      fs.accessSync(path.join(dir, name), fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const make = process.platform === 'linux' ? 'make' : 'gmake';
const compiler = process.env.CC ?? 'cc';
const missing = [
  onPath(compiler) ? null : `a C compiler (${compiler})`,
  onPath(make) ? null : `${make}`,
  onPath('python3') || process.env.PYTHON ? null : 'python3',
].filter(Boolean);
if (missing.length > 0) {
  const hint = process.platform === 'freebsd' ? 'pkg install gmake python3 (cc is in the base system)' : 'apt-get install build-essential python3';
  console.error(`sockvisor: cannot build the native addon: missing ${missing.join(', ')}.\n  Install them (for example: ${hint}) and run npm install again.`);
  process.exit(1);
}

// The running Node's headers: <prefix>/include/node, where packages and official builds put them.
const prefix = path.resolve(path.dirname(process.execPath), '..');
const nodedir = fs.existsSync(path.join(prefix, 'include/node/node_api.h')) ? prefix : process.env.npm_config_nodedir;
if (!nodedir) {
  console.error(`sockvisor: cannot build the native addon: no Node headers under ${prefix}/include/node.\n  Install the Node development headers (the package that ships node_api.h) and run npm install again.`);
  process.exit(1);
}

const nodeGyp = process.env.npm_config_node_gyp ?? path.join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
const result = spawnSync(process.execPath, [nodeGyp, 'rebuild', `--nodedir=${nodedir}`], { cwd: root, stdio: 'inherit' });
if (result.status !== 0) {
  console.error('sockvisor: building the native addon failed; the compiler output above says why.');
  process.exit(result.status ?? 1);
}
