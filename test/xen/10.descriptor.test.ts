// Property: a descriptor round-trips exactly and stays within its size goal (64 KiB plus one
// bit per region page), and a seed refuses every descriptor that is truncated, altered, forged,
// made with another secret, for another program, or out of the format's limits, with a
// DescriptorError naming the field and offset, and without allocating more than it was given.
import { createHash, createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MAX_PAYLOAD } from '../../dom0/wire.js';
import {
  checkProgram,
  decodeDescriptor,
  DescriptorError,
  descriptorLength,
  encodeDescriptor,
  LIMITS,
  programHash,
  programIdentity,
  scanZeroPages,
  ZeroMap,
  type Descriptor,
  type DescriptorErrorCode,
} from '../../xen/descriptor.js';
import { splitState } from '../../xen/state.js';

const secret = randomBytes(32);
const GiB = 2 ** 30;
const PAGE = 4096;

/** mulberry32: a small seeded generator, so that every run tests the same cases. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function bitmap(pages: number, zero: (page: number) => boolean): Uint8Array {
  const bm = new Uint8Array(Math.ceil(pages / 8));
  for (let p = 0; p < pages; p++) if (zero(p)) bm[p >> 3] |= 1 << (p & 7);
  return bm;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const program = { path: '/opt/jobs/heat.js', sha256: sha('heat'), args: ['--grid', '4096', 'données ü'], cwd: '/work/run-7' };

function descriptor(regions: Descriptor['regions'], extra: Partial<Descriptor> = {}): Descriptor {
  return {
    jobId: '6f1c2a9e-3b8d-4a51-9e0f-0c5d7a2b4e11',
    program,
    forkPoint: { sequence: 0, label: 'MPI.init' },
    worldSize: 17,
    cloneIds: [9, 10, 11, 12, 13, 14, 15, 16],
    state: splitState({ grid: 4096, steps: 1000, names: ['a', 'b'], tol: 1e-9, big: 2n ** 70n }).blob,
    regions,
    memoryServer: { host: 'th1', address: '10.77.0.2', port: 40123 },
    multicast: { group: '239.1.2.3', port: 40124 },
    ...extra,
  };
}

/** Three 1 GiB regions with the zero maps a real job would have. */
function realistic(): { d: Descriptor; maps: Uint8Array[] } {
  const pages = GiB / PAGE;
  const r = rng(7);
  const maps = [
    bitmap(pages, (p) => p >= (300 * 2 ** 20) / PAGE), // loaded 300 MiB, the rest untouched
    bitmap(pages, () => r() >= 0.01), // 1% of its pages written here and there
    bitmap(pages, () => r() < 0.5), // half written at random: nothing to compress
  ];
  const types = ['Float64Array', 'Int32Array', 'Uint8Array'] as const;
  const regions = maps.map((bm, i) => ({
    id: i + 1,
    slot: i,
    path: `state.fields[${i}]`,
    byteLength: GiB,
    pageSize: PAGE,
    hugePages: true,
    elementType: types[i],
    zeroMap: ZeroMap.fromBitmap(bm, pages),
  }));
  return { d: descriptor(regions), maps };
}

/** A small descriptor that has every kind of field, for exhaustive bit flips and fuzzing. */
function small(): Descriptor {
  const pages = 64;
  return descriptor([
    { id: 3, slot: 1, path: 'state.a', byteLength: pages * PAGE, pageSize: PAGE, hugePages: false, elementType: 'Float32Array', zeroMap: ZeroMap.fromBitmap(bitmap(pages, (p) => p > 40), pages) },
    { id: 5, slot: 0, path: 'state.b', byteLength: pages * PAGE - 100, pageSize: PAGE, hugePages: true, elementType: 'BigInt64Array', zeroMap: ZeroMap.fromBitmap(bitmap(pages, (p) => p % 3 === 0), pages) },
    { id: 9, slot: 2, path: 'state.c', byteLength: 3 * 2 ** 21, pageSize: 2 ** 21, hugePages: true, elementType: 'ArrayBuffer', zeroMap: ZeroMap.allZero(3) },
  ]);
}

/** The decoded form of a descriptor, with zero maps as bitmaps, for deep comparison. */
function plain(d: Descriptor): unknown {
  return { ...d, state: Buffer.from(d.state).toString('hex'), regions: d.regions.map((r) => ({ ...r, zeroMap: Buffer.from(r.zeroMap.toBitmap()).toString('hex') })) };
}

function refused(bytes: Uint8Array, code: DescriptorErrorCode | DescriptorErrorCode[], message?: RegExp | string, key = secret, expect = {}): DescriptorError {
  try {
    decodeDescriptor(bytes, key, expect);
  } catch (e) {
    if (!(e instanceof DescriptorError)) throw e;
    const codes = Array.isArray(code) ? code : [code];
    assert.ok(codes.includes(e.code), `code ${e.code} (${e.message}), expected ${codes.join(' or ')}`);
    if (typeof message === 'string') assert.is(e.message, message);
    else if (message) assert.match(e.message, message);
    return e;
  }
  assert.unreachable(`decoded; expected ${String(code)}`);
  throw new Error('unreachable');
}

/** Sets the length field to the buffer's length and signs it again: a descriptor made by a
 * peer that holds the secret but breaks the format (a bug, another version's encoder). */
function resign(bytes: Buffer, key = secret): Buffer {
  const out = Buffer.from(bytes);
  out.writeUInt32BE(out.length, 8);
  createHmac('sha256', key).update('sfmpi descriptor v1\0').update(out.subarray(0, out.length - 32)).digest().copy(out, out.length - 32);
  return out;
}

/** Where each field is, read independently of the decoder by following the header drawing. */
function layout(b: Buffer): Record<string, number> {
  const at: Record<string, number> = {};
  let p = 12;
  const str = (name: string, lb: 1 | 2 | 4) => {
    at[name] = p;
    const n = lb === 1 ? b[p] : lb === 2 ? b.readUInt16BE(p) : b.readUInt32BE(p);
    p += lb + n;
  };
  str('jobId', 1);
  str('program.path', 2);
  at['program.sha256'] = p;
  p += 32;
  str('program.cwd', 2);
  at.argc = p;
  const argc = b.readUInt32BE(p);
  p += 4;
  for (let i = 0; i < argc; i++) str(`args[${i}]`, 4);
  at.sequence = p;
  p += 4;
  str('label', 1);
  at.worldSize = p;
  p += 4;
  at.cloneCount = p;
  const clones = b.readUInt32BE(p);
  p += 4;
  at.cloneIds = p;
  p += 4 * clones;
  str('host', 1);
  at.address = p;
  at.port = p + 4;
  at.multicast = p + 6;
  p += 14;
  at.state = p;
  p += 4 + b.readUInt32BE(p);
  at.regionCount = p;
  const regions = b.readUInt16BE(p);
  p += 2;
  for (let i = 0; i < regions; i++) {
    const r = `r${i}.`;
    [at[`${r}id`], at[`${r}slot`], at[`${r}byteLength`], at[`${r}pageSize`]] = [p, p + 4, p + 8, p + 16];
    [at[`${r}flags`], at[`${r}type`], at[`${r}encoding`], at[`${r}reserved`]] = [p + 20, p + 21, p + 22, p + 23];
    p += 24;
    str(`${r}path`, 2);
    at[`${r}zeroMap`] = p;
    p += 4 + b.readUInt32BE(p);
  }
  at.mac = p;
  assert.is(p, b.length - 32, 'the fields end where the MAC begins');
  return at;
}

test('a descriptor of 8 clones and 3 regions of 1 GiB round-trips within the size goal', () => {
  const { d, maps } = realistic();
  const bytes = encodeDescriptor(d, secret);
  const back = decodeDescriptor(bytes, secret, { program, jobId: d.jobId, cloneIds: d.cloneIds });
  assert.equal(plain(back), plain(d));
  back.regions.forEach((r, i) => assert.equal(r.zeroMap.toBitmap(), maps[i], `region ${i}'s zero map`));
  assert.equal(back.regions.map((r) => r.zeroMap.encoding), ['runs', 'runs', 'bitmap']);

  const pages = 3 * (GiB / PAGE);
  const goal = 64 * 1024 + pages / 8;
  assert.ok(bytes.length <= goal, `${bytes.length} bytes, goal ${goal}`);
  // Worst case: every region half written at random, nothing compresses.
  const r = rng(11);
  const worst = descriptor(d.regions.map((x) => ({ ...x, zeroMap: ZeroMap.fromBitmap(bitmap(GiB / PAGE, () => r() < 0.5), GiB / PAGE) })));
  const worstBytes = encodeDescriptor(worst, secret).length;
  assert.ok(worstBytes <= goal, `worst case ${worstBytes} bytes, goal ${goal}`);
  const sizes = d.regions.map((x) => x.zeroMap.encoded().length);
  console.log(
    `  descriptor, 8 clones, 3 x 1 GiB: ${bytes.length} bytes (zero maps ${sizes.join(' + ')}; goal ${goal}); ` +
      `all three maps random: ${worstBytes}; SnowFlock: about ${3 * 2 ** 20}`,
  );
});

test('zero maps pick the smallest encoding and decode to the same pages', () => {
  const n = 1000;
  const cases: [string, (p: number) => boolean, string][] = [
    ['nothing zero', () => false, 'none'],
    ['all zero', () => true, 'all'],
    ['one run', (p) => p >= 10, 'runs'],
    ['alternating', (p) => p % 2 === 0, 'bitmap'],
    ['one zero page', (p) => p === 999, 'runs'],
  ];
  for (const [name, zero, encoding] of cases) {
    const bm = bitmap(n, zero);
    const m = ZeroMap.fromBitmap(bm, n);
    assert.is(m.encoding, encoding, name);
    const back = ZeroMap.decode(m.encoding, m.encoded(), n);
    assert.equal(back.toBitmap(), bm, name);
    assert.is(back.zeroCount, m.zeroCount, name);
    for (let p = 0; p < n; p += 37) assert.is(back.isZero(p), zero(p), `${name}: page ${p}`);
  }
  // Padding bits of a caller's bitmap are ignored; a wrong length is refused.
  assert.is(ZeroMap.fromBitmap(new Uint8Array([0xff, 0xff]), 9).zeroCount, 9);
  assert.throws(() => ZeroMap.fromBitmap(new Uint8Array(3), 9), /a bitmap of 9 pages is 2 bytes, got 3/);
});

test('scanZeroPages finds the zero pages of real memory', () => {
  const bytes = new Uint8Array(10 * PAGE + 100);
  bytes[3 * PAGE + 17] = 1;
  bytes[7 * PAGE] = 255;
  bytes[10 * PAGE + 99] = 2; // the last, partial page
  const m = scanZeroPages(bytes, PAGE);
  assert.is(m.pageCount, 11);
  assert.equal([...Array(11).keys()].filter((p) => !m.isZero(p)), [3, 7, 10]);
});

test('every truncation of a descriptor is refused as truncated', () => {
  const bytes = encodeDescriptor(realistic().d, secret);
  for (let n = 0; n < bytes.length; n++) {
    const e = refused(bytes.subarray(0, n), 'ERR_DESCRIPTOR_TRUNCATED');
    if (n >= 12) assert.is(e.message, `descriptor truncated at offset ${n}: ${n} of ${bytes.length} bytes`);
  }
  refused(bytes.subarray(0, 5), 'ERR_DESCRIPTOR_TRUNCATED', 'descriptor header at offset 5: truncated: 5 bytes, shorter than the 12-byte header');
  refused(Buffer.concat([bytes, Buffer.from([0])]), 'ERR_DESCRIPTOR_TRAILING', `descriptor at offset ${bytes.length}: 1 bytes after its end (its length says ${bytes.length})`);
});

test('every flipped bit is refused: in the header by the field it breaks, elsewhere as forged', () => {
  const bytes = encodeDescriptor(small(), secret);
  const headerCodes: DescriptorErrorCode[] = ['ERR_DESCRIPTOR_MAGIC', 'ERR_DESCRIPTOR_VERSION', 'ERR_DESCRIPTOR_FIELD', 'ERR_DESCRIPTOR_TOO_LARGE', 'ERR_DESCRIPTOR_TRUNCATED', 'ERR_DESCRIPTOR_TRAILING'];
  for (let bit = 0; bit < bytes.length * 8; bit++) {
    const b = Buffer.from(bytes);
    b[bit >> 3] ^= 1 << (bit & 7);
    if (bit < 96) refused(b, headerCodes);
    else refused(b, 'ERR_DESCRIPTOR_FORGED');
  }
  // And on the large one, a sample.
  const big = encodeDescriptor(realistic().d, secret);
  const r = rng(3);
  for (let i = 0; i < 300; i++) {
    const b = Buffer.from(big);
    const at = 12 + Math.floor(r() * (big.length - 12));
    b[at] ^= 1 << Math.floor(r() * 8);
    refused(b, 'ERR_DESCRIPTOR_FORGED', new RegExp(`descriptor MAC at offset ${big.length - 32} does not match`));
  }
  const h = Buffer.from(bytes);
  h[0] ^= 1;
  refused(h, 'ERR_DESCRIPTOR_MAGIC', `descriptor magic at offset 0: bytes 52 46 44 53 are not a descriptor's magic "SFDS" (53 46 44 53)`);
  const v = Buffer.from(bytes);
  v[4] = 2;
  refused(v, 'ERR_DESCRIPTOR_VERSION', 'descriptor version at offset 4: version 2, this host reads version 1 only');
});

test('a wrong secret is refused as forged', () => {
  const bytes = encodeDescriptor(small(), secret);
  refused(bytes, 'ERR_DESCRIPTOR_FORGED', `descriptor MAC at offset ${bytes.length - 32} does not match: it was forged or altered, or made with another job's secret`, randomBytes(32));
  assert.throws(() => decodeDescriptor(bytes, Buffer.alloc(16)), /the job secret must be 32 bytes, got 16/);
});

test('a seed refuses a descriptor for another program, job or clones, naming both sides', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-desc-'));
  try {
    const file = path.join(dir, 'prog.js');
    fs.writeFileSync(file, 'console.log(1)\n');
    const origin = programIdentity('prog.js', ['a', 'b'], dir);
    assert.equal(origin, { path: file, sha256: sha('console.log(1)\n'), args: ['a', 'b'], cwd: dir });
    const bytes = encodeDescriptor(descriptor([], { program: origin }), secret);
    decodeDescriptor(bytes, secret, { program: programIdentity(file, ['a', 'b'], dir) });

    fs.appendFileSync(file, '// another version of the program\n');
    const seed = programIdentity(file, ['a', 'b'], dir);
    assert.is.not(seed.sha256, origin.sha256);
    const e = refused(bytes, 'ERR_DESCRIPTOR_PROGRAM', undefined, secret, { program: seed });
    assert.is(e.message, `descriptor is for program ${file} with sha256 ${origin.sha256}, but this seed's ${file} has sha256 ${seed.sha256} (the file differs between the hosts)`);
    assert.throws(
      () => checkProgram(origin, { ...origin, path: '/other/prog.js' }),
      (x: DescriptorError) => x.code === 'ERR_DESCRIPTOR_PROGRAM' && x.message === `descriptor is for program ${file} with sha256 ${origin.sha256}, but this seed runs /other/prog.js with sha256 ${origin.sha256}`,
    );
    assert.throws(() => checkProgram(origin, { ...origin, args: ['a'] }), /descriptor is for .*prog\.js with arguments \["a","b"\], but this seed runs it with \["a"\]/);
    assert.throws(() => checkProgram(origin, { ...origin, cwd: '/tmp' }), /run in .*, but this seed runs in \/tmp/);
    const d = descriptor([], { program: origin });
    refused(bytes, 'ERR_DESCRIPTOR_JOB', `descriptor is for job ${d.jobId}, this seed belongs to job j-2`, secret, { jobId: 'j-2' });
    refused(bytes, 'ERR_DESCRIPTOR_CLONES', 'descriptor makes clones 9, 10, 11, 12, 13, 14, 15, 16 of this host, but its dom0 started seeds for clones 1, 2', secret, { cloneIds: [1, 2] });
  } finally {
    fs.rmSync(dir, { recursive: true });
  }
});

test('programHash is computed once per file version, and sees a rewrite of the same size and mtime', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sfmpi-desc-'));
  const open = fs.openSync;
  try {
    const file = path.join(dir, 'prog');
    fs.writeFileSync(file, 'version 1');
    fs.utimesSync(file, 1e9, 1e9); // a round mtime, so that it can be set back exactly
    let opens = 0;
    fs.openSync = ((...a: Parameters<typeof open>) => {
      if (a[0] === file) opens++;
      return open(...a);
    }) as typeof open;
    const h1 = programHash(file);
    assert.is(programHash(file), h1);
    assert.is(programHash(path.join(dir, '.', 'prog')), h1);
    assert.is(opens, 1, 'hashed once');
    fs.writeFileSync(file, 'version 2');
    fs.utimesSync(file, 1e9, 1e9); // same size, same mtime to the nanosecond: only the ctime tells
    assert.is(fs.statSync(file, { bigint: true }).mtimeNs, 10n ** 18n);
    const h2 = programHash(file);
    assert.is(h2, sha('version 2'));
    assert.is(opens, 2);
    assert.throws(() => programHash(dir), /is not a regular file/);
    assert.throws(() => programHash(path.join(dir, 'missing')), /ENOENT.*missing/);
  } finally {
    fs.openSync = open;
    fs.rmSync(dir, { recursive: true });
  }
});

test('the encoder refuses what the format cannot carry, naming the field', () => {
  const base = small();
  const cases: [Partial<Descriptor>, DescriptorErrorCode, string][] = [
    [{ state: new Uint8Array(LIMITS.state + 1) }, 'ERR_DESCRIPTOR_TOO_LARGE', `encode descriptor: state is ${LIMITS.state + 1} bytes, over the limit of ${LIMITS.state}`],
    [{ program: { ...program, args: ['x'.repeat(LIMITS.arg + 1)] } }, 'ERR_DESCRIPTOR_TOO_LARGE', `encode descriptor: program.args[0] is ${LIMITS.arg + 1} bytes, over the limit of ${LIMITS.arg}`],
    [{ program: { ...program, args: Array(17).fill('x'.repeat(LIMITS.arg)) } }, 'ERR_DESCRIPTOR_TOO_LARGE', `encode descriptor: program.args are ${17 * LIMITS.arg} bytes in all, over the limit of ${LIMITS.args}`],
    [{ program: { ...program, path: 'heat.js' } }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: program.path must be absolute, got heat.js'],
    [{ program: { ...program, sha256: 'ABC' } }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: program.sha256 must be 64 lower-case hex digits, got "ABC"'],
    [{ program: { ...program, cwd: '/a\0b' } }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: program.cwd contains a NUL character'],
    [{ jobId: 'j\ud800' }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: jobId is not well-formed Unicode (a lone surrogate)'],
    [{ jobId: '' }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: jobId is empty'],
    [{ cloneIds: [3, 2] }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: cloneIds[1] must be above cloneIds[0] (3): ids are strictly increasing, got 2'],
    [{ cloneIds: [17] }, 'ERR_DESCRIPTOR_TOO_LARGE', 'encode descriptor: cloneIds[0] must be an integer in 1..16, got 17'],
    [{ worldSize: 1 }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: worldSize must be an integer in 2..65536, got 1'],
    [{ worldSize: 5000, cloneIds: [...Array(4097).keys()].map((i) => i + 1) }, 'ERR_DESCRIPTOR_TOO_LARGE', 'encode descriptor: cloneIds has 4097 ids, over the limit of 4096'],
    [{ memoryServer: { host: 'th1', address: '239.0.0.1', port: 1 } }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: memoryServer.address 239.0.0.1 is a multicast group, not a host address'],
    [{ memoryServer: { host: 'th1', address: '10.0.0.1', port: 0 } }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: memoryServer.port must be an integer in 1..65535, got 0'],
    [{ multicast: { group: '10.0.0.1', port: 9 } }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: multicast.group 10.0.0.1 is not a multicast group (224.0.0.0/4)'],
    [{ regions: [{ ...base.regions[0], slot: 0, zeroMap: ZeroMap.none(3) }] }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: regions[0].zeroMap covers 3 pages, the region has 64 (262144 bytes in pages of 4096)'],
    [{ regions: [base.regions[0], { ...base.regions[1], id: 3 }] }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: regions[1].id 3 is the id of an earlier region'],
    [{ regions: [{ ...base.regions[0], slot: 0, pageSize: 12288 }] }, 'ERR_DESCRIPTOR_FIELD', 'encode descriptor: regions[0].pageSize must be a power of two, got 12288'],
    [{ regions: [{ ...base.regions[0], slot: 1 }] }, 'ERR_DESCRIPTOR_TOO_LARGE', 'encode descriptor: regions[0].slot must be an integer in 0..0, got 1'],
  ];
  for (const [change, code, message] of cases) {
    assert.throws(
      () => encodeDescriptor({ ...base, ...change }, secret),
      (e: DescriptorError) => e instanceof DescriptorError && e.code === code && e.message === message,
      message,
    );
  }
  // Zero maps that do not compress: 17 regions of 8 GiB, 256 KiB of bitmap each, pass 4 MiB.
  const pages = (8 * GiB) / PAGE;
  const noise = ZeroMap.fromBitmap(randomBytes(pages / 8), pages);
  const regions = [...Array(17).keys()].map((i) => ({ ...base.regions[0], id: i + 1, slot: i, byteLength: 8 * GiB, zeroMap: noise }));
  assert.throws(
    () => encodeDescriptor({ ...base, regions }, secret),
    (e: DescriptorError) => e.code === 'ERR_DESCRIPTOR_TOO_LARGE' && /^encode descriptor: regions\[15\] brings the descriptor to \d+ bytes, over the limit of 4194304$/.test(e.message),
  );
  assert.is(LIMITS.total, MAX_PAYLOAD, 'a descriptor fits one control frame');
});

/** Decodes under a measure of the memory it takes; returns the growth in bytes. */
function growth(fn: () => void): { buffers: number; heap: number } {
  const before = process.memoryUsage();
  fn();
  const after = process.memoryUsage();
  return { buffers: after.arrayBuffers - before.arrayBuffers, heap: after.heapUsed - before.heapUsed };
}

test('hostile fields from a peer that holds the secret are refused by name, before allocation', () => {
  const bytes = encodeDescriptor(small(), secret);
  const at = layout(bytes);
  const edit = (f: (b: Buffer) => void, size = bytes.length) => {
    const b = Buffer.alloc(size);
    bytes.copy(b, 0, 0, Math.min(size, bytes.length) - 32);
    f(b);
    return resign(b);
  };
  const cases: [Buffer, DescriptorErrorCode, string][] = [
    [edit((b) => b.writeUInt32BE(0xffffffff, at.argc)), 'ERR_DESCRIPTOR_TOO_LARGE', `descriptor program.args at offset ${at.argc}: 4294967295 is over the limit of 65536`],
    [edit((b) => b.writeUInt32BE(65536, at.argc)), 'ERR_DESCRIPTOR_FIELD', `descriptor program.args at offset ${at.argc}: 65536 entries of at least 4 bytes cannot fit in the ${bytes.length - 32 - at.argc - 4} bytes that remain`],
    [edit((b) => b.writeUInt32BE(0xffffffff, at['args[0]'])), 'ERR_DESCRIPTOR_TOO_LARGE', `descriptor program.args[0] at offset ${at['args[0]']}: length 4294967295 is over the limit of 131072 bytes`],
    [edit((b) => b.writeUInt32BE(131072, at['args[0]'])), 'ERR_DESCRIPTOR_FIELD', `descriptor program.args[0] at offset ${at['args[0]'] + 4}: needs 131072 bytes, only ${bytes.length - 32 - at['args[0]'] - 4} remain before the MAC`],
    [edit((b) => b.writeUInt32BE(0xffffffff, at.state)), 'ERR_DESCRIPTOR_TOO_LARGE', `descriptor state at offset ${at.state}: length 4294967295 is over the limit of 2097152 bytes`],
    [edit((b) => b.writeUInt32BE(100000, at.cloneCount)), 'ERR_DESCRIPTOR_TOO_LARGE', `descriptor cloneIds at offset ${at.cloneCount}: 100000 is over the limit of 16`],
    [edit((b) => b.writeUInt32BE(0, at.cloneIds)), 'ERR_DESCRIPTOR_FIELD', `descriptor cloneIds[0] at offset ${at.cloneIds}: clone id 0 out of range 1..16`],
    [edit((b) => b.writeUInt32BE(9, at.cloneIds + 4)), 'ERR_DESCRIPTOR_FIELD', `descriptor cloneIds[1] at offset ${at.cloneIds + 4}: clone id 9 is not above the one before (9)`],
    [edit((b) => b.writeUInt32BE(1, at.worldSize)), 'ERR_DESCRIPTOR_FIELD', `descriptor worldSize at offset ${at.worldSize}: 1 is below the minimum of 2`],
    [edit((b) => b.writeUInt16BE(65535, at.regionCount)), 'ERR_DESCRIPTOR_TOO_LARGE', `descriptor regions at offset ${at.regionCount}: 65535 is over the limit of 1024`],
    [edit((b) => b.writeUInt16BE(1000, at.regionCount)), 'ERR_DESCRIPTOR_FIELD', `descriptor regions at offset ${at.regionCount}: 1000 entries of at least 31 bytes cannot fit in the ${bytes.length - 32 - at.regionCount - 2} bytes that remain`],
    [edit((b) => b.writeBigUInt64BE(2n ** 64n - 1n, at['r0.byteLength'])), 'ERR_DESCRIPTOR_TOO_LARGE', `descriptor regions[0].byteLength at offset ${at['r0.byteLength']}: 18446744073709551615 is over the limit of 1099511627776`],
    [edit((b) => b.writeBigUInt64BE(0n, at['r0.byteLength'])), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].byteLength at offset ${at['r0.byteLength']}: a region of 0 bytes`],
    [edit((b) => b.writeUInt32BE(3000, at['r0.pageSize'])), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].pageSize at offset ${at['r0.pageSize']}: 3000 is below the minimum of 4096`],
    [edit((b) => b.writeUInt32BE(12288, at['r0.pageSize'])), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].pageSize at offset ${at['r0.pageSize']}: 12288 is not a power of two`],
    [edit((b) => (b[at['r0.flags']] = 2)), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].flags at offset ${at['r0.flags']}: flags 0x02: only bit 0 (huge pages) is defined`],
    [edit((b) => (b[at['r0.type']] = 200)), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].elementType at offset ${at['r0.type']}: element type 200 is not one of 0..11`],
    [edit((b) => (b[at['r0.encoding']] = 9)), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].zeroMap at offset ${at['r0.encoding']}: zero map encoding 9 is not one of 0..3`],
    [edit((b) => (b[at['r0.reserved']] = 1)), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].reserved at offset ${at['r0.reserved']}: reserved byte is 1, not 0`],
    [edit((b) => b.writeUInt32BE(0xffffffff, at['r0.zeroMap'])), 'ERR_DESCRIPTOR_TOO_LARGE', `descriptor regions[0].zeroMap at offset ${at['r0.zeroMap']}: length 4294967295 is over the 8 bytes of a bitmap of 64 pages`],
    [edit((b) => (b[at['r0.zeroMap'] + 4] -= 1)), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].zeroMap at offset ${at['r0.zeroMap'] + 4}: runs cover 63 pages, the region has 64`],
    [edit((b) => (b[at['r0.zeroMap'] + 4] += 1)), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[0].zeroMap at offset ${at['r0.zeroMap'] + 5}: runs cover more than the region's 64 pages`],
    [edit((b) => b.writeUInt32BE(7, at['r2.slot'])), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[2].slot at offset ${at['r2.slot']}: slot 7 out of range 0..2`],
    [edit((b) => b.writeUInt32BE(3, at['r1.id'])), 'ERR_DESCRIPTOR_FIELD', `descriptor regions[1].id at offset ${at['r1.id']}: region id 3 is the id of an earlier region`],
    [edit((b) => (b[at.multicast] = 2)), 'ERR_DESCRIPTOR_FIELD', `descriptor multicast at offset ${at.multicast}: flag 2: must be 0 (none) or 1 (a group follows)`],
    [edit((b) => (b[at.multicast + 2] = 10)), 'ERR_DESCRIPTOR_FIELD', `descriptor multicast.group at offset ${at.multicast + 2}: 10.1.2.3 is not a multicast group (224.0.0.0/4)`],
    [edit((b) => (b[at.address] = 0)), 'ERR_DESCRIPTOR_FIELD', `descriptor memoryServer.address at offset ${at.address}: 0.77.0.2 is not a host address (0.0.0.0/8)`],
    [edit((b) => b.writeUInt16BE(0, at.port)), 'ERR_DESCRIPTOR_FIELD', `descriptor memoryServer.port at offset ${at.port}: 0 is below the minimum of 1`],
    [edit((b) => b.writeUInt16BE(0, at['program.cwd'])), 'ERR_DESCRIPTOR_FIELD', `descriptor program.cwd at offset ${at['program.cwd']}: is empty`],
    [edit((b) => (b[at.jobId + 1] = 0xc3) && (b[at.jobId + 2] = 0x28)), 'ERR_DESCRIPTOR_FIELD', `descriptor jobId at offset ${at.jobId + 1}: is not valid UTF-8`],
    [edit((b) => (b[at['program.path'] + 3] = 0)), 'ERR_DESCRIPTOR_FIELD', `descriptor program.path at offset ${at['program.path'] + 3}: contains a NUL byte`],
    [edit((b) => (b[at['program.path'] + 2] = 0x61)), 'ERR_DESCRIPTOR_FIELD', `descriptor program.path at offset ${at['program.path']}: aopt/jobs/heat.js is not absolute`],
    [edit(() => {}, bytes.length + 3), 'ERR_DESCRIPTOR_FIELD', `descriptor regions at offset ${bytes.length - 32}: 3 bytes after the last field, before the MAC`],
  ];
  for (const [b, code, message] of cases) {
    const g = growth(() => refused(b, code, message));
    assert.ok(g.buffers < 64 * 1024, `${message}: ${g.buffers} bytes of buffers allocated`);
  }
  // Header-level limits, refused before the MAC is even computed.
  const huge = Buffer.from(bytes);
  huge.writeUInt32BE(LIMITS.total + 1, 8);
  refused(huge, 'ERR_DESCRIPTOR_TOO_LARGE', `descriptor length at offset 8: ${LIMITS.total + 1} bytes is over the limit of ${LIMITS.total}`);
  assert.is(descriptorLength(bytes.subarray(0, 12)), bytes.length);
  assert.throws(() => descriptorLength(Buffer.from('GET / HTTP/1.1\r\n')), (e: DescriptorError) => e.code === 'ERR_DESCRIPTOR_MAGIC');
});

test('a fuzz of thousands of mutations only ever gets DescriptorErrors, and bounded allocation', () => {
  const base = encodeDescriptor(small(), secret);
  const r = rng(20261);
  const pick = (n: number) => Math.floor(r() * n);
  const extremes = [0, 1, 2, 0x7f, 0x80, 0xff, 0xffff, 0x10000, 0x7fffffff, 0xffffffff];
  const mutate = (b: Buffer): Buffer => {
    switch (pick(7)) {
      case 0: {
        const c = Buffer.from(b);
        const bit = pick(c.length * 8);
        c[bit >> 3] ^= 1 << (bit & 7);
        return c;
      }
      case 1: {
        const c = Buffer.from(b);
        c[pick(c.length)] = pick(256);
        return c;
      }
      case 2: {
        const c = Buffer.from(b);
        const at = pick(Math.max(1, c.length - 4));
        if (at + 4 <= c.length) c.writeUInt32BE(extremes[pick(extremes.length)], at);
        return c;
      }
      case 3:
        return b.subarray(0, pick(b.length));
      case 4: {
        const at = pick(b.length);
        return Buffer.concat([b.subarray(0, at), randomBytesSeeded(1 + pick(8)), b.subarray(at)]);
      }
      case 5: {
        const at = pick(b.length);
        return Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + pick(8))]);
      }
      default: {
        const at = pick(b.length);
        const n = 1 + pick(16);
        return Buffer.concat([b.subarray(0, at + n), b.subarray(at, at + n), b.subarray(at + n)]);
      }
    }
  };
  const randomBytesSeeded = (n: number) => Buffer.from(Array.from({ length: n }, () => pick(256)));
  const outcomes = new Map<string, number>();
  let decoded = 0;
  for (let i = 0; i < 4000; i++) {
    let b = base;
    for (let k = 1 + pick(3); k > 0; k--) b = mutate(b);
    if (r() < 0.75 && b.length >= 44) b = resign(b);
    let result: Descriptor | undefined;
    const g = growth(() => {
      try {
        result = decodeDescriptor(b, secret);
      } catch (e) {
        if (!(e instanceof DescriptorError)) throw new Error(`mutation ${i} threw ${(e as Error).name}: ${(e as Error).message} for ${b.toString('hex')}`);
        assert.match(e.message, /^descriptor .*at offset \d+/, e.message);
        outcomes.set(e.code, (outcomes.get(e.code) ?? 0) + 1);
      }
    });
    assert.ok(g.buffers <= 2 * b.length + 64 * 1024, `mutation ${i}: ${g.buffers} bytes of buffers for ${b.length} bytes of input`);
    assert.ok(g.heap <= 64 * b.length + 4 * 2 ** 20, `mutation ${i}: heap grew ${g.heap} bytes for ${b.length} bytes of input`);
    if (result) {
      decoded++;
      // What the decoder accepts, the encoder can write again, and it means the same.
      const again = decodeDescriptor(encodeDescriptor(result, secret), secret);
      assert.equal(plain(again), plain(result), `mutation ${i} re-encoded`);
    }
  }
  for (const code of ['ERR_DESCRIPTOR_FORGED', 'ERR_DESCRIPTOR_FIELD', 'ERR_DESCRIPTOR_TRUNCATED', 'ERR_DESCRIPTOR_TOO_LARGE'])
    assert.ok((outcomes.get(code) ?? 0) > 0, `the fuzz reached ${code}: ${JSON.stringify([...outcomes])}`);
  assert.ok(decoded > 0, 'some mutations are still valid descriptors');
});

test.run();
