/**
 * Whole-job wall time of commands, run where this runs (inside a test host, or inside a Slurm
 * allocation there): every command once per round, in turn (A B C A B C ...), each timed from
 * spawn to exit. Prints one JSON line {"key", "us"} per run; a command that fails (non-zero
 * status, a signal, over its timeout) stops the benchmark with its output, since a figure of a
 * failed job would mean nothing.
 *
 *   node walltime.js ROUNDS SPEC_JSON      SPEC: [{"key": "...", "argv": [...], "env": {...}}]
 */
import { spawnSync } from 'node:child_process';

interface Spec {
  key: string;
  argv: string[];
  env?: Record<string, string>;
}

const rounds = Number(process.argv[2]);
const specs = JSON.parse(process.argv[3] ?? '[]') as Spec[];
if (!Number.isInteger(rounds) || rounds < 1 || !Array.isArray(specs) || specs.length === 0) {
  process.stderr.write('usage: walltime.js ROUNDS SPEC_JSON\n');
  process.exit(2);
}
for (let i = 0; i < rounds; i++) {
  for (const s of specs) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(s.argv[0], s.argv.slice(1), { encoding: 'utf8', env: { ...process.env, ...s.env }, timeout: 60_000, killSignal: 'SIGKILL' });
    const us = Number(process.hrtime.bigint() - t0) / 1000;
    if (r.status !== 0) {
      process.stderr.write(`walltime: ${s.key}: ${s.argv.join(' ')} failed (status ${r.status}, signal ${r.signal}${r.error ? `, ${r.error.message}` : ''})\n${r.stdout}${r.stderr}\n`);
      process.exit(1);
    }
    console.log(JSON.stringify({ key: s.key, us }));
  }
}
