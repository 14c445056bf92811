#!/usr/bin/env node
/**
 * dom0: the per-host manager of one job that spans hosts. sfmpirun starts one on every host of
 * the job, over ssh (the job secret on its standard input, which then stays open as the
 * launcher's lifeline) or with one srun step (the secret in the environment):
 *
 *   node dom0/main.js --launcher ADDR:PORT --job ID --hosts a,b,c --binds A,B,C [--index I]
 *
 * --hosts names the job's hosts and --binds their cluster addresses, in host order; this dom0
 * is --index, or (under srun, where every dom0 gets the same words) the host whose name is
 * Slurm's for this node.
 *
 * Flow: read the secret, listen for data connections on this host's cluster address, connect to
 * the launcher and prove the secret (dom0/handshake.ts), then run this host's part of the job
 * (dom0/host.ts) and exit with it. When the launcher goes (its connection closes or falls
 * silent, or ssh's standard input ends), every rank of the host is killed and dom0 exits:
 * nothing of a job outlives it.
 */
import net from 'node:net';
import os from 'node:os';
import { connectAuthenticated, readSecretLine, SECRET_ENV, secretFromEnv } from './handshake.js';
import { HostPart } from './host.js';

function die(message: string, code = 1): never {
  process.stderr.write(`sfmpi dom0 on ${os.hostname()}: ${message}\n`);
  process.exit(code);
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const launcher = arg('--launcher'), job = arg('--job'), names = (arg('--hosts') ?? '').split(','), binds = (arg('--binds') ?? '').split(',');
  if (!launcher || !job || names.length !== binds.length || names[0] === '')
    die('usage: dom0 --launcher ADDR:PORT --job ID --hosts a,b,... --binds A,B,... [--index I]', 2);
  const [lhost, lport] = [launcher.slice(0, launcher.lastIndexOf(':')), Number(launcher.slice(launcher.lastIndexOf(':') + 1))];
  if (!net.isIP(lhost) || !Number.isInteger(lport)) die(`--launcher ${launcher}: expected IPv4:port`, 2);
  let index = Number(arg('--index') ?? NaN);
  if (!Number.isInteger(index)) {
    // Under srun: find this host among the job's by the name Slurm gave it.
    const me = process.env.SLURMD_NODENAME ?? os.hostname();
    index = names.indexOf(me);
    if (index < 0) die(`this host (${me}) is not among --hosts ${names.join(',')}`, 2);
  }
  if (index < 0 || index >= names.length) die(`--index ${index} out of range for ${names.length} hosts`, 2);
  const bind = binds[index];
  const fromSsh = process.env[SECRET_ENV] === undefined;
  const secret = fromSsh ? await readSecretLine(process.stdin) : secretFromEnv();

  const part = new HostPart(secret, index, (line) => process.stderr.write(`sfmpi dom0 on ${os.hostname()}: ${line}\n`));
  await part.listen(bind);
  const socket = await connectAuthenticated({ host: lhost, port: lport, secret, role: 'dom0', accept: ['launcher'] });
  // Over ssh, standard input is the launcher's lifeline.
  if (fromSsh) {
    process.stdin.on('end', () => part.abort('its ssh session ended'));
    process.stdin.resume();
  }
  const { code } = await part.run(socket);
  process.exit(code);
}

process.on('uncaughtException', (e) => die(`internal error: ${e.stack ?? e.message}`));
main().catch((e: Error) => die(e.message));
