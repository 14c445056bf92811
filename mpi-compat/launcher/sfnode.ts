#!/usr/bin/env node
/**
 * sfnode: run a TypeScript or JavaScript program ready to be cloned (the runtime API, without
 * MPI): the Node flags a forked Node needs, and TypeScript without a build step.
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import { prepare, ProgramError, removeAll } from './program.js';

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write('Usage: sfnode <program.ts|program.js> [args...]\n\nRuns a program that calls clone() with the flags a cloned Node.js needs.\n');
    return argv.length === 0 ? 2 : 0;
  }
  let prepared;
  try {
    prepared = await prepare(argv[0], argv.slice(1));
  } catch (e) {
    if (e instanceof ProgramError) {
      process.stderr.write(`sfnode: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (prepared.kind === 'executable') {
    process.stderr.write(`sfnode: ${argv[0]} is not a JavaScript or TypeScript program\n`);
    return 2;
  }
  try {
    const child = spawn(prepared.command, prepared.args, {
      stdio: 'inherit',
      env: { ...process.env, SFMPI_LAUNCHER_PID: String(process.pid) },
    });
    const forward = (sig: NodeJS.Signals) => child.kill(sig);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.once('exit', (c, s) => resolve([c, s])),
    );
    if (signal) {
      process.stderr.write(`sfnode: program killed by signal ${signal}\n`);
      return 128 + (os.constants.signals[signal] ?? 0);
    }
    return code ?? 1;
  } finally {
    removeAll(prepared.cleanup);
  }
}

process.exitCode = await main(process.argv.slice(2));
