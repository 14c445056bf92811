/**
 * Regenerates the README's benchmark tables from one run of the current code: runs each
 * benchmark named between markers in README.md and puts its output there, with the commit,
 * the date and the machine, so that every table says which run it came from.
 *
 *   <!-- bench:clone -->  ...replaced...  <!-- /bench:clone -->
 *
 *   node dist/benchmarks/readme.js [name...]     (npm run bench:readme; default: every marker)
 *
 * Each benchmark runs alone (they are long and timing-sensitive: run this on a quiet machine).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { machine, root } from './mpi-peers.js';

/** The benchmarks the README shows, by marker name: the npm script that prints each. */
const BENCHES: Record<string, string[]> = {
  clone: ['run', '-s', 'bench:clone'],
  pingpong: ['run', '-s', 'bench:pingpong'],
  allreduce: ['run', '-s', 'bench:allreduce'],
  c: ['run', '-s', 'bench:c'],
  cluster: ['run', '-s', 'bench:cluster'],
};

const readme = path.join(root, 'README.md');
let text = fs.readFileSync(readme, 'utf8');
const wanted = process.argv.slice(2);
const commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
const dirty = execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
for (const [name, args] of Object.entries(BENCHES)) {
  if (wanted.length && !wanted.includes(name)) continue;
  const open = `<!-- bench:${name} -->`, close = `<!-- /bench:${name} -->`;
  const a = text.indexOf(open), b = text.indexOf(close);
  if (a < 0 || b < a) {
    process.stderr.write(`bench:readme: README.md has no ${open} ... ${close} section; skipped\n`);
    continue;
  }
  process.stderr.write(`bench:readme: npm ${args.join(' ')}\n`);
  const r = spawnSync('npm', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    process.stderr.write(`bench:readme: ${name} failed (status ${r.status}); its section is left as it was\n`);
    continue;
  }
  const when = new Date().toISOString().slice(0, 16).replace('T', ' ');
  const body = `\n_One run of commit ${commit}${dirty ? ' (with local changes)' : ''}, ${when} UTC, ${machine()}._\n\n\`\`\`\n${r.stdout.trim()}\n\`\`\`\n`;
  text = text.slice(0, a + open.length) + body + text.slice(b);
  fs.writeFileSync(readme, text);
}
