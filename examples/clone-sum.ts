/**
 * Load a large Float64Array once, clone the running program 8 ways, let each clone sum its
 * slice, and join the partial sums in the origin. No clone loads or copies anything: each one
 * continues from clone() with the origin's memory.
 *
 *   npx sfnode examples/clone-sum.ts [elements]     (default 2^25 = 256 MiB of doubles)
 */
import { clone, exit, join, region, requestTicket } from 'sfmpi';

const n = Number(process.argv[2] ?? 2 ** 25);
const clones = 8;
if (!Number.isSafeInteger(n) || n < clones) throw new RangeError(`elements must be an integer >= ${clones}, got ${process.argv[2]}`);

// The state every clone will have: filled once, here.
const data = region(Float64Array, n);
for (let i = 0; i < n; i++) data[i] = (i % 1000) / 10;

const t0 = performance.now();
const ticket = requestTicket(clones); // may grant fewer (ticket.size): the slices follow the grant
const id = clone(ticket);
if (id > 0) {
  const per = Math.ceil(n / ticket.size);
  let sum = 0;
  for (let i = (id - 1) * per; i < Math.min(n, id * per); i++) sum += data[i];
  exit(sum);
}

const outcomes = await join(ticket);
let total = 0;
for (const o of outcomes) {
  if (!o.ok) throw new Error(o.reason);
  total += o.value as number;
}
let check = 0;
for (let i = 0; i < n; i++) check += data[i];
console.log(`${ticket.size} clones summed ${n} doubles (${((n * 8) / 2 ** 20).toFixed(0)} MiB): total ${total.toFixed(1)}`);
console.log(`clones ready ${(ticket.readyAt - t0).toFixed(1)} ms, joined ${(performance.now() - t0).toFixed(1)} ms; origin's own sum ${check.toFixed(1)}`);
if (Math.abs(total - check) > 1e-6 * Math.abs(check)) process.exitCode = 1;
