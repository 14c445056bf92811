// Property: the data plane header is a documented, addon-safe API: every exported function has a
// comment at its declaration, and the implementation never exits, aborts, prints or installs
// signal handlers (the Node addon links the same sources).
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { run } from '../helpers.js';
import { buildLib, csrc, describe, root, tempDir } from './helpers.js';

const header = path.join(root, 'native', 'include', 'sf_dataplane.h');
const srcDir = path.join(root, 'native', 'dataplane');

test('every sf_ function in sf_dataplane.h is documented at its declaration', () => {
  const lines = fs.readFileSync(header, 'utf8').split('\n');
  const undocumented: string[] = [];
  let documented = false;
  let seen = 0;
  for (const line of lines) {
    if (line.trim() === '') {
      documented = false;
      continue;
    }
    if (/\*\/\s*$/.test(line)) {
      documented = true;
      continue;
    }
    const m = line.match(/^[A-Za-z_][\w\s*]*?\b(sf_\w+)\(/);
    if (m && !line.startsWith('typedef')) {
      seen++;
      if (!documented) undocumented.push(m[1]);
    }
  }
  assert.ok(seen > 40, `found only ${seen} declarations: the parser is broken`);
  assert.equal(undocumented, [], 'functions without a comment at their declaration');
});

test('every public symbol is prefixed sf_ (sf__ for internal ones) and has C linkage', () => {
  const h = fs.readFileSync(header, 'utf8');
  assert.match(h, /#ifdef __cplusplus\nextern "C" \{/);
  const names = [...h.matchAll(/^[A-Za-z_][\w\s*]*?\b(\w+)\(/gm)].map((m) => m[1]).filter((n) => !/^(if|while|for|sizeof)$/.test(n));
  assert.equal(names.filter((n) => !n.startsWith('sf_')), []);
});

test('the implementation never exits, aborts, prints or handles signals', () => {
  const bad: string[] = [];
  for (const f of fs.readdirSync(srcDir).filter((f) => f.endsWith('.c') || f.endsWith('.h'))) {
    const text = fs.readFileSync(path.join(srcDir, f), 'utf8').replace(/\/\*[\s\S]*?\*\//g, '');
    text.split('\n').forEach((line, i) => {
      if (/(^|[^\w])(exit|abort|printf|fprintf|puts|perror|signal|sigaction)\s*\(/.test(line)) bad.push(`${f}:${i + 1}: ${line.trim()}`);
      // _exit only in a freshly forked clone of sf_job_fork (it must not return into the caller's code)
      if (/\b_exit\s*\(/.test(line) && !/_exit\(127\)/.test(line)) bad.push(`${f}:${i + 1}: ${line.trim()}`);
    });
  }
  assert.equal(bad, []);
});

test('a malformed frame is reported as SF_EPROTO naming the sender, never a crash', async () => {
  await buildLib();
  const dir = tempDir('malformed');
  const bin = path.join(dir, 'malformed');
  try {
    await promisify(execFile)('cc', [
      '-O2', '-Wall', '-Wextra', '-Werror',
      `-I${path.join(root, 'native', 'dataplane')}`, `-I${path.join(root, 'native', 'include')}`,
      path.join(csrc, 'dataplane_malformed.c'), path.join(root, 'build', 'c', 'libsfmpi.a'), '-lpthread', '-o', bin,
    ]);
    const j = await run(bin, [], { timeoutMs: 30_000 });
    assert.is(j.code, 0, describe({ ...j, leftovers: [] }));
    assert.is(j.stdout.trim(), 'VERDICT malformed PASS');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
