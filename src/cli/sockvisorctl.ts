#!/usr/bin/env node
/** sockvisorctl: the control client. Its commands arrive with the daemon's control socket. */
import { Command } from 'commander';
import { VERSION } from '../version.js';

const program = new Command();
program.name('sockvisorctl').description('Control a running sockvisord.').version(VERSION);
program.action(() => {
  process.stderr.write('sockvisorctl: this build has no control commands yet; use sockvisord check\n');
  process.exitCode = 1;
});
await program.parseAsync(process.argv);
