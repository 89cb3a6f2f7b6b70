#!/usr/bin/env node
/** sockvisord: the daemon and its offline tools. */
import { Command } from 'commander';
import { defaultConfigPath } from '../config/daemon-config.js';
import { loadConfig, relativeToCwd } from '../config/load.js';
import { checkJson, formatCheckText } from './check-report.js';
import { VERSION } from '../version.js';

const program = new Command();
program.name('sockvisord').description('Holds listening sockets and supervises the services that serve them.').version(VERSION);

program
  .command('check')
  .description('check the daemon config and service files, print what would run, and change nothing')
  .argument('[service-files...]', 'check these service files instead of the configured services directory')
  .option('-c, --config <file>', 'daemon config file', undefined)
  .option('--json', 'print the result as JSON')
  .action(async (serviceFiles: string[], opts: { config?: string; json?: boolean }) => {
    // Service files on their own need no daemon config; without them the default one is read.
    const configFile = opts.config ?? (serviceFiles.length > 0 ? undefined : defaultConfigPath(process.platform));
    const result = await loadConfig({ ...(configFile !== undefined ? { configFile } : {}), ...(serviceFiles.length > 0 ? { serviceFiles } : {}) });
    if (opts.json) process.stdout.write(JSON.stringify(checkJson(result, relativeToCwd), null, 2) + '\n');
    else process.stdout.write(formatCheckText(result, relativeToCwd));
    process.exitCode = result.ok ? 0 : 1;
  });

await program.parseAsync(process.argv);
