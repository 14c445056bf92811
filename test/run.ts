/**
 * The test command (`npm test`): uvu over dist/test, every *.test.js file in one process as
 * uvu's own CLI runs them, then an exit even when a test left a handle open. A failed test that
 * skipped its cleanup (a listening socket, a timer) would otherwise keep the process alive after
 * the summary, and CI would wait for its 90-minute limit; here it is named, and the run ends
 * with uvu's verdict.
 *
 *   node dist/test/run.js [dir-under-dist/test] [pattern]
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'uvu/parse';
import { run } from 'uvu/run';

const here = path.dirname(fileURLToPath(import.meta.url));
const dir = path.join(here, process.argv[2] ?? '.');
const pattern = new RegExp(process.argv[3] ?? '\\.test\\.js$');
process.env.FORCE_COLOR ??= '1';
const { suites } = await parse(dir, pattern);
await run(suites, { bail: false });
// Handles still referenced once every suite has run (the runner's own stdio aside), after a
// moment for those already closing, were leaked by a test: they would have kept it running.
type Handle = { hasRef?(): boolean; spawnargs?: string[]; pid?: number; remoteAddress?: string; localPort?: number; address?(): unknown };
const stdio = new Set<unknown>([process.stdin, process.stdout, process.stderr]);
const open = () =>
  (process as unknown as { _getActiveHandles(): Handle[] })._getActiveHandles().filter((h) => !stdio.has(h) && h.hasRef?.() !== false);
for (let i = 0; i < 20 && open().length > 0; i++) await new Promise((r) => setTimeout(r, 50).unref());
const left = open();
if (left.length > 0) {
  const name = (h: Handle) =>
    h.spawnargs ? `child ${h.pid}: ${h.spawnargs.join(' ').slice(0, 200)}`
    : h.localPort !== undefined ? `socket :${h.localPort}${h.remoteAddress ? ` -> ${h.remoteAddress}` : ''}`
    : typeof h.address === 'function' ? `server ${JSON.stringify(h.address())}`
    : (h as object).constructor.name;
  process.stderr.write(`test run: warning: handles still open after every test (a test skipped its cleanup):\n${left.map((h) => `  ${name(h)}\n`).join('')}`);
}
process.exit(process.exitCode ?? 0);
