#!/usr/bin/env node
/** sockvisord: the daemon and its offline tools. */
import { Command } from 'commander';
import { defaultConfigPath } from '../config/daemon-config.js';
import { loadConfig, relativeToCwd } from '../config/load.js';
import { checkJson, formatCheckText } from './check-report.js';
import { Daemon, describeStartFailure } from '../daemon/daemon.js';
import { createLogger, type LogFormat } from '../daemon/logger.js';
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

program
  .command('run', { isDefault: true })
  .description('run the daemon in the foreground (rc.d and systemd do the daemonising)')
  .option('-c, --config <file>', 'daemon config file', defaultConfigPath(process.platform))
  .option('--log-format <format>', 'json (pino) or pretty', 'json')
  .option('--log-level <level>', 'overrides log_level from the config')
  .action(async (opts: { config: string; logFormat: string; logLevel?: string }) => {
    if (opts.logFormat !== 'json' && opts.logFormat !== 'pretty') {
      process.stderr.write(`sockvisord: --log-format must be json or pretty, not ${opts.logFormat}\n`);
      process.exit(2);
    }
    const { logger, tee } = createLogger(opts.logFormat as LogFormat, (opts.logLevel ?? 'info') as 'info');
    // Signals are ours before anything starts, so none can hit a default action mid-start.
    let daemon: Daemon | undefined;
    let stopRequested = false;
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutdown requested');
      stopRequested = true;
      if (daemon) void daemon.shutdown().then(() => process.exit(0));
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
      if (daemon) void daemon.reload();
      else logger.warn('SIGHUP while starting: ignored');
    });
    try {
      daemon = await Daemon.start({
        configFile: opts.config, logger, logLevelFromCommandLine: opts.logLevel !== undefined,
        attachLogFile: (file) => tee.attachFile(file),
        requestShutdown: () => stop('sockvisorctl shutdown'),
      });
    } catch (e) {
      process.stderr.write(`sockvisord: not started:\n${describeStartFailure(e)}\n`);
      process.exit(1);
    }
    if (stopRequested) void daemon.shutdown().then(() => process.exit(0));
  });

await program.parseAsync(process.argv);
