/**
 * Starts one process from a LaunchPlan with exactly the fds the plan lists:
 * 0 /dev/null, 1 and 2 the output pipes, 3 the argdata, 4 + i the fd table.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import type { Readable } from 'node:stream';
import { prepareForChild } from '../sockets/handoff.js';
import { native } from '../sockets/native.js';
import type { SocketRegistry } from '../sockets/registry.js';
import type { LaunchPlan } from './launch-plan.js';

export interface LaunchedProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  /** The read ends of the child's stdout and stderr pipes. */
  readonly stdout: Readable;
  readonly stderr: Readable;
  /**
   * Writes the argdata. Until then the runner waits in its read of fd 3 with the interpreter
   * already started: a standby that can take over in a fraction of a cold start. Without
   * `holdArgdata` this has already happened.
   */
  readonly release: () => void;
  /** A held start that will never be released (a standby thrown away): closes the argdata pipe. */
  readonly discard: () => void;
}

export interface LaunchOptions {
  readonly uid?: number;
  readonly gid?: number;
  /** How long a `connect:` socket may take. */
  readonly connectTimeoutMs?: number;
  /** Start the process but keep its argdata until `release()`. */
  readonly holdArgdata?: boolean;
}

export async function launch(plan: LaunchPlan, registry: SocketRegistry, options: LaunchOptions = {}): Promise<LaunchedProcess> {
  // Everything opened for this start only; the child keeps its own copies.
  const transient: number[] = [];
  const closeTransient = () => {
    for (const fd of transient.splice(0)) native.close(fd);
  };
  let stdoutRead: number | undefined;
  let stderrRead: number | undefined;
  let argdataWrite: number | undefined;
  try {
    const [outR, outW] = native.pipe();
    stdoutRead = outR;
    transient.push(outW);
    const [errR, errW] = native.pipe();
    stderrRead = errR;
    transient.push(errW);
    const [argR, argW] = native.pipe();
    argdataWrite = argW;
    transient.push(argR);

    const table: number[] = [];
    const held: number[] = [];
    for (const source of plan.fdTable) {
      switch (source.kind) {
        case 'held': {
          const socket = registry.get(source.identity);
          if (!socket) throw new Error(`socket ${source.identity} is not held`);
          held.push(socket.fd);
          table.push(socket.fd);
          break;
        }
        case 'connect': {
          const a = source.socket.address;
          const fd = a.family === 'unix'
            ? await native.connect(0, a.path, 0, source.socket.socketType, options.connectTimeoutMs ?? 5000)
            : await native.connect(a.hostKind === 'ipv6' ? 6 : 4, a.host, a.port, source.socket.socketType, options.connectTimeoutMs ?? 5000);
          transient.push(fd);
          table.push(fd);
          break;
        }
        case 'file': {
          const fd = fs.openSync(source.path, 'r');
          transient.push(fd);
          table.push(fd);
          break;
        }
        case 'stdio':
          table.push(source.stream === 'stdout' ? outW : errW);
          break;
        case 'inherit':
          table.push(source.fd);
          break;
      }
    }
    prepareForChild(held);

    const [exe, ...args] = plan.argv;
    const child = spawn(exe!, args, {
      stdio: ['ignore', outW, errW, argR, ...table],
      env: plan.env as NodeJS.ProcessEnv,
      cwd: plan.cwd,
      // Its own process group, so a stop reaches every process it started.
      detached: true,
      ...(options.uid !== undefined && options.uid >= 0 ? { uid: options.uid } : {}),
      ...(options.gid !== undefined && options.gid >= 0 ? { gid: options.gid } : {}),
    });
    const spawned = await new Promise<ChildProcess>((resolve, reject) => {
      child.once('spawn', () => resolve(child));
      child.once('error', reject);
    });
    closeTransient();

    // The argdata goes through a pipe the child reads to EOF; a large document must not block us.
    const argdata = new net.Socket({ fd: argW, readable: false, writable: true });
    argdataWrite = undefined;
    argdata.on('error', () => {
      // The child died before reading it all; its exit is what gets reported.
    });
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      argdata.end(plan.argdata);
    };
    if (!options.holdArgdata) release();
    const discard = () => {
      released = true;
      argdata.destroy();
    };

    return {
      child: spawned,
      pid: spawned.pid!,
      stdout: new net.Socket({ fd: stdoutRead, readable: true, writable: false }),
      stderr: new net.Socket({ fd: stderrRead, readable: true, writable: false }),
      release,
      discard,
    };
  } catch (e) {
    closeTransient();
    if (stdoutRead !== undefined) native.close(stdoutRead);
    if (stderrRead !== undefined) native.close(stderrRead);
    if (argdataWrite !== undefined) native.close(argdataWrite);
    throw e;
  }
}
