// Property: the multicast layer's pieces that need no network hold their contracts: the key of a
// job and session is HKDF over the secret and differs for every job, session and secret; a
// datagram is laid out as native/lazy/multicast.c draws it and its MAC is exactly Node's
// HMAC-SHA256 of header and payload (C and TypeScript agree on the format); bad options fail
// with a message naming the option; and the per-job choice of unicast or multicast follows
// its stated grounds; SFMPI_DISTRIBUTION is read strictly, and the memory server's multicast
// configuration is laid out as native/lazy/memsrv.c draws it.
import crypto from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  chooseDistribution, deriveMcastKey, distributionSetting, groupOfJob, jobDistribution, jobOfId, MCAST_HEADER_BYTES, McastReceiver, McastSender,
  McastType, newJobId, packDatagram, reportPortOf,
} from '../../xen/mcast.js';
import { encodeServerMulticast, SERVER_MULTICAST_BYTES } from '../../xen/lazy.js';

const secret = crypto.randomBytes(32);
const job = 0x1122334455667788n;
const key = deriveMcastKey(secret, job);

test('deriveMcastKey: 32 bytes, HKDF-SHA256 as documented, one key per secret, job and session', () => {
  assert.is(key.length, 32);
  const info = Buffer.alloc(12);
  info.writeBigUInt64LE(job, 0);
  assert.equal(key, Buffer.from(crypto.hkdfSync('sha256', secret, Buffer.from('sfmpi multicast v1'), info, 32)));
  assert.equal(deriveMcastKey(secret, job), key, 'deterministic');
  assert.not.equal(deriveMcastKey(secret, job + 1n), key, 'another job');
  assert.not.equal(deriveMcastKey(secret, job, 1), key, 'another session');
  assert.not.equal(deriveMcastKey(crypto.randomBytes(32), job), key, 'another secret');
  assert.throws(() => deriveMcastKey(Buffer.alloc(16), job), /secret must be 32 bytes \(the job secret\), got 16/);
  assert.throws(() => deriveMcastKey(secret, 5 as unknown as bigint), /job must be a bigint/);
  assert.throws(() => deriveMcastKey(secret, -1n), /job must fit 64 unsigned bits/);
});

test('packDatagram: the drawn layout, and the MAC is HMAC-SHA256(key, bytes 0..47 | payload)', () => {
  const payload = crypto.randomBytes(1392);
  const d = packDatagram({ type: McastType.pages, pageShift: 12, job, session: 7, region: 3, seq: 99n, page: 41, offset: 1392 }, payload, key);
  assert.is(d.length, MCAST_HEADER_BYTES + payload.length);
  assert.is(d.subarray(0, 4).toString('latin1'), 'SFMC', 'magic');
  assert.equal([d[4], d[5], d[6], d[7]], [1, 1, 12, 0], 'version, type, shift, flags');
  assert.is(d.readBigUInt64LE(8), job);
  assert.equal([d.readUInt32LE(16), d.readUInt32LE(20)], [7, 3], 'session, region');
  assert.is(d.readBigUInt64LE(24), 99n, 'seq');
  assert.equal([d.readUInt32LE(32), d.readUInt32LE(36), d.readUInt32LE(40), d.readUInt32LE(44)], [41, 1392, 1392, 0], 'page, offset, length, count');
  const mac = crypto.createHmac('sha256', key).update(d.subarray(0, 48)).update(payload).digest();
  assert.equal(d.subarray(48, 80), mac, 'MAC');
  assert.equal(d.subarray(80), payload);
  const end = packDatagram({ type: McastType.end, pageShift: 12, job, page: 0, count: 16 }, new Uint8Array(0), key);
  assert.is(end.length, MCAST_HEADER_BYTES);
  assert.equal(end.subarray(48, 80), crypto.createHmac('sha256', key).update(end.subarray(0, 48)).digest(), 'MAC of an empty payload');
  assert.throws(() => packDatagram({ type: 1, pageShift: 12, job }, Buffer.alloc(65500), key), /do not fit/);
});

test('groupOfJob: organisation-local group and a port in 17000..17999, the same for the same job', () => {
  const g = groupOfJob(job);
  assert.match(g.group, /^239\.192\.\d{1,3}\.\d{1,3}$/);
  assert.ok(g.port >= 17000 && g.port < 18000, String(g.port));
  assert.equal(groupOfJob(job), g);
  const ids = new Set(Array.from({ length: 8 }, () => newJobId()));
  assert.is(ids.size, 8, 'fresh job ids');
});

test('bad options are refused, naming the option', () => {
  const base = { group: '239.192.1.1', port: 17001, iface: '127.0.0.1', key, job };
  assert.throws(() => new McastSender({ ...base, key: 'k' as unknown as Buffer }), /options\.key must be a Buffer/);
  assert.throws(() => new McastSender({ ...base, key: Buffer.alloc(31) }), /options\.key must be 32 bytes, got 31/);
  assert.throws(() => new McastSender({ ...base, port: 0 }), /options\.port must be 1\.\.65535, got 0/);
  assert.throws(() => new McastSender({ ...base, job: 1 as unknown as bigint }), /options\.job must be a bigint/);
  assert.throws(() => new McastSender({ ...base, rate: -5 }), /options\.rate must be an integer/);
  assert.throws(() => new McastSender({ ...base, group: '10.0.0.1' }), /group 10\.0\.0\.1 is not a multicast address/);
  assert.throws(() => new McastSender({ ...base, iface: '10.255.254.253' }), /no interface of this host has address 10\.255\.254\.253/);
  const err = (() => {
    try {
      new McastSender({ ...base, iface: 'nowhere' });
    } catch (e) {
      return e as Error & { code?: string };
    }
  })();
  assert.is(err?.code, 'SF_MCAST_EINVAL');
  assert.match(err!.message, /interface address "nowhere" is not an IPv4 address/);
  const rbase = { ...base, regions: [{ id: 0, buffer: new ArrayBuffer(8192) }] };
  assert.throws(() => new McastReceiver({ ...rbase, regions: [] }), /options\.regions must be a non-empty array/);
  assert.throws(() => new McastReceiver({ ...rbase, regions: [{ id: 0, buffer: new ArrayBuffer(5000) }] }), /options\.regions\[0\]\.buffer must be a whole, non-zero number of 4096-byte pages, got 5000 bytes/);
  assert.throws(() => new McastReceiver({ ...rbase, regions: [{ id: 0, buffer: new Uint8Array(4096) as unknown as ArrayBuffer }] }), /options\.regions\[0\]\.buffer must be an ArrayBuffer/);
  assert.throws(() => new McastReceiver({ ...rbase, reportAddr: '10.0.0.1' }), /reportAddr and options\.reportPort go together/);
});

test('chooseDistribution: unicast without multicast, for one seed, for little data, on one machine, for disjoint data, under heavy loss; multicast for many seeds sharing much over a network', () => {
  const GiB = 1 << 30;
  assert.is(chooseDistribution({ seeds: 4, bytesPerSeed: GiB, multicastWorks: false }).method, 'unicast');
  assert.match(chooseDistribution({ seeds: 1, bytesPerSeed: GiB }).reason, /nothing to share/);
  assert.match(chooseDistribution({ seeds: 8, bytesPerSeed: 1 << 20 }).reason, /too little/);
  const one = chooseDistribution({ seeds: 3, bytesPerSeed: GiB, oneMachine: true });
  assert.is(one.method, 'unicast', one.reason);
  assert.match(one.reason, /one machine/);
  const net = chooseDistribution({ seeds: 3, bytesPerSeed: GiB });
  assert.is(net.method, 'multicast', net.reason);
  assert.ok(net.multicastSeconds < net.unicastSeconds / 2, JSON.stringify(net));
  assert.is(chooseDistribution({ seeds: 2, bytesPerSeed: GiB }).method, 'multicast');
  assert.is(chooseDistribution({ seeds: 8, bytesPerSeed: GiB, shared: 0 }).method, 'unicast', 'each seed its own pages');
  const lossy = chooseDistribution({ seeds: 3, bytesPerSeed: GiB, loss: 0.3 });
  assert.is(lossy.method, 'unicast', lossy.reason);
  // Pages split over 3 datagrams at MTU 1500 lose more than whole ones at MTU 9000.
  const l1500 = chooseDistribution({ seeds: 4, bytesPerSeed: GiB, loss: 0.05 });
  const l9000 = chooseDistribution({ seeds: 4, bytesPerSeed: GiB, loss: 0.05, mtu: 9000 });
  assert.ok(l1500.multicastSeconds > l9000.multicastSeconds, `${l1500.multicastSeconds} vs ${l9000.multicastSeconds}`);
  // Measured rates override the defaults: a fast enough multicast wins even on one machine.
  assert.is(chooseDistribution({ seeds: 8, bytesPerSeed: GiB, oneMachine: true, multicastRate: 1.5e9 }).method, 'multicast');
  assert.throws(() => chooseDistribution({ seeds: 2, bytesPerSeed: GiB, loss: 2 }), /loss must be 0\.\.1/);
  assert.throws(() => chooseDistribution({ seeds: 2, bytesPerSeed: GiB, shared: -1 }), /shared must be 0\.\.1/);
});

test('the per-job setting: SFMPI_DISTRIBUTION read strictly, forced or chosen; the job id and report port every dom0 derives alike', () => {
  assert.is(distributionSetting(undefined), 'unicast');
  assert.is(distributionSetting(''), 'unicast');
  for (const v of ['unicast', 'multicast', 'auto'] as const) assert.is(distributionSetting(v), v);
  assert.throws(() => distributionSetting('broadcast'), /SFMPI_DISTRIBUTION must be unicast, multicast or auto, got "broadcast"/);
  const one = { seeds: 1, bytesPerSeed: 64 << 20 };
  assert.is(jobDistribution('multicast', one).method, 'multicast', 'forced, even where the choice would be unicast');
  assert.is(jobDistribution('auto', one).method, 'unicast', '1 seed: nothing to share');
  assert.is(jobDistribution('auto', { seeds: 3, bytesPerSeed: 64 << 20 }).method, 'multicast', '3 seeds sharing all of 64 MiB on a network');
  assert.is(jobDistribution('unicast', { seeds: 3, bytesPerSeed: 64 << 20 }).method, 'unicast');
  assert.is(jobOfId('job-a'), jobOfId('job-a'));
  assert.is.not(jobOfId('job-a'), jobOfId('job-b'));
  assert.throws(() => jobOfId(''), /jobId must be a non-empty string/);
  const { port } = groupOfJob(jobOfId('job-a'));
  const ports = new Set([1, 2, 3].map((s) => reportPortOf(port, s)));
  assert.is(ports.size, 3, 'one report port per session');
  for (const p of ports) assert.ok(p >= 18000 && p < 19000 && p !== port, `report port ${p}`);
});

test('encodeServerMulticast: the 97 bytes memsrv.c reads, strings NUL-terminated, addresses checked', () => {
  const k = crypto.randomBytes(32);
  const b = encodeServerMulticast({ group: '239.192.1.2', port: 17001, iface: '10.77.0.1', key: k, job, session: 3, reportPort: 18004 }, 250, 30);
  assert.is(b.length, SERVER_MULTICAST_BYTES);
  assert.is(b.toString('latin1', 0, 5), 'MSFMM');
  assert.is(b.readUInt32LE(5), 1);
  assert.is(b.readBigUInt64LE(9), job);
  assert.is(b.readUInt32LE(17), 3);
  assert.is(b.readUInt16LE(21), 17001);
  assert.is(b.readUInt16LE(23), 18004);
  assert.is(b.toString('latin1', 25, 25 + 11), '239.192.1.2');
  assert.is(b[25 + 15], 0);
  assert.is(b.toString('latin1', 41, 41 + 9), '10.77.0.1');
  assert.is(b[41 + 15], 0);
  assert.ok(b.subarray(57, 89).equals(k));
  assert.is(b.readUInt32LE(89), 250);
  assert.is(b.readUInt32LE(93), 30);
  assert.throws(() => encodeServerMulticast({ group: 'group', port: 1, iface: '10.0.0.1', key: k, job, session: 0, reportPort: 0 }), /multicast group must be an IPv4 address, got "group"/);
  assert.throws(() => encodeServerMulticast({ group: '239.1.1.1', port: 1, iface: '10.0.0.1', key: k.subarray(0, 31), job, session: 0, reportPort: 0 }), /key must be 32 bytes, got 31/);
});

test.run();
