// doc-ext: every public member of Group, Cartcomm, Graphcomm, DistGraphcomm and Win (and the
// neighbourhood collectives they share) has a heading in docs/mpi-ts.md, as doc.test.ts does
// for MPI, Comm, Request, Status and Op.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cartcomm, DistGraphcomm, Graphcomm, Group, Win } from '../../mpi-compat/ts/index.js';
import { root } from './helpers.js';

const headings = fs.readFileSync(path.join(root, 'docs', 'mpi-ts.md'), 'utf8').split('\n').filter((l) => l.startsWith('#')).join('\n');
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const documented = (name: string) => new RegExp('`' + escape(name) + '(?![\\w$])').test(headings);
const members = (proto: object) => Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor' && !n.startsWith('_'));

const check = (names: string[]) => {
  const missing = names.filter((n) => !documented(n));
  assert.equal(missing, [], `undocumented: ${missing.join(', ')}`);
};

test('Group', () => check(members(Group.prototype).map((k) => `group.${k}`)));

test('Cartcomm, Graphcomm, DistGraphcomm and their neighbourhood collectives', () => {
  const shared = Object.getPrototypeOf(Cartcomm.prototype) as object;
  check([
    ...members(shared).map((k) => `topo.${k}`),
    ...[...members(Cartcomm.prototype), 'dims', 'periods', 'coords'].map((k) => `cart.${k}`),
    ...[...members(Graphcomm.prototype), 'index', 'edges'].map((k) => `graph.${k}`),
    ...[...members(DistGraphcomm.prototype), 'sources', 'destinations'].map((k) => `dgraph.${k}`),
  ]);
});

test('Win', () => {
  check([
    ...[...members(Win.prototype), 'comm'].map((k) => `win.${k}`),
    ...Object.getOwnPropertyNames(Win).filter((k) => !['length', 'name', 'prototype'].includes(k)).map((k) => `Win.${k}`),
  ]);
});

test.run();
