// Property: every public export of the package is documented at its declaration (as mpi4py's
// test_doc.py does), so the API reference never silently loses a member.
import path from 'node:path';
import ts from 'typescript';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { root } from '../helpers.js';

function undocumented(entry: string): string[] {
  const file = path.join(root, entry);
  const program = ts.createProgram([file], { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  assert.ok(source, `cannot read ${entry}`);
  const moduleSymbol = checker.getSymbolAtLocation(source!);
  assert.ok(moduleSymbol, `${entry} has no exports`);
  const missing: string[] = [];
  for (const exported of checker.getExportsOfModule(moduleSymbol!)) {
    const symbol = exported.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exported) : exported;
    const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
    if (!doc) missing.push(exported.getName());
  }
  return missing;
}

for (const entry of ['runtime/index.ts', 'mpi-compat/ts/index.ts']) {
  test(`every export of ${entry} is documented`, () => {
    const missing = undocumented(entry);
    assert.equal(missing, [], `undocumented exports of ${entry}: ${missing.join(', ')}`);
  });
}

test.run();
