// doc: every public member of MPI, Comm, Request, Status and Op has a heading in docs/mpi-ts.md
// (as mpi4py's test_doc.py fails on an undocumented member).
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Comm, MPI, Op, Request, Status } from '../../mpi-compat/ts/index.js';
import { root } from './helpers.js';

const headings = fs.readFileSync(path.join(root, 'docs', 'mpi-ts.md'), 'utf8').split('\n').filter((l) => l.startsWith('#')).join('\n');
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
// The heading must name the member exactly: `comm.send(` or `comm.send`, never `comm.sendrecv(`.
const documented = (prefix: string, name: string) => new RegExp('`' + escape(prefix + name) + '(?![\\w$])').test(headings);
const members = (proto: object) => Object.getOwnPropertyNames(proto).filter((n) => n !== 'constructor' && !n.startsWith('_'));

test('MPI namespace', () => {
  const missing = Object.keys(MPI).filter((k) => !['Op', 'Request', 'Status', 'Comm', 'MPIError'].includes(k) && !documented('MPI.', k));
  assert.equal(missing, [], `undocumented: ${missing.join(', ')}`);
});

test('Comm methods and properties', () => {
  const missing = [...members(Comm.prototype), 'rank', 'size'].filter((k) => !documented('comm.', k));
  assert.equal(missing, [], `undocumented: ${missing.join(', ')}`);
});

test('Request, Status, Op', () => {
  const missing = [
    ...members(Request.prototype).filter((k) => k !== 'then').map((k) => `req.${k}`),
    ...members(Request).filter((k) => !['length', 'name', 'prototype'].includes(k)).map((k) => `Request.${k}`),
    ...members(Status.prototype).map((k) => `status.${k}`),
    ...['source', 'tag', 'count', 'bytes', 'datatype'].map((k) => `status.${k}`),
    ...members(Op.prototype).map((k) => `op.${k}`),
    'Op.create', 'op.name', 'op.commute',
  ].filter((k) => !documented('', k));
  assert.equal(missing, [], `undocumented: ${missing.join(', ')}`);
});

test.run();
