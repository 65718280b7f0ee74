import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { library as config } from '../tsup.config.js';
import { type BuiltPackage, buildPackage, ENTRIES } from './support/build.js';

/**
 * The public API, entry by entry: every value and type a user can import. A new export changes
 * the snapshot (`test/__snapshots__/public-api.test.ts.snap`), so it is a deliberate change,
 * reviewed with the budget below in mind.
 */
const VALUE_BUDGET: Readonly<Record<string, number>> = {
  // 40, plus 3 for the bulkhead: createBulkhead, BulkheadRejectedError, BULKHEAD_DEFAULTS;
  // plus 7 for the circuit breaker: createCircuitBreaker, createMemoryCircuitStore,
  // CircuitOpenError, HeldError, shouldHold, isCircuitFailure, CIRCUIT_BREAKER_DEFAULTS;
  // plus 1 for delivery records: createMemoryDeliveryStore.
  index: 51,
};
const SUBPATH_VALUE_BUDGET = 30;

const SOURCES = (config as { entry: Record<string, string> }).entry;

/** Names an entry's source exports, split into values and types (explicit barrels only). */
function sourceExports(entry: string): { values: string[]; types: string[] } {
  const path = SOURCES[entry];
  if (path === undefined) throw new Error(`no source for entry ${entry}`);
  const file = join(import.meta.dirname, '..', path);
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022);
  const values: string[] = [];
  const types: string[] = [];
  const exported = (node: ts.Node): boolean =>
    ts.canHaveModifiers(node) &&
    (ts.getModifiers(node)?.some((m) => m.kind === ts.SyntaxKind.ExportKeyword) ?? false);
  for (const statement of source.statements) {
    if (ts.isExportDeclaration(statement)) {
      const clause = statement.exportClause;
      if (clause === undefined || !ts.isNamedExports(clause)) {
        throw new Error(`${path}: name every export (no \`export *\`)`);
      }
      for (const element of clause.elements) {
        (statement.isTypeOnly || element.isTypeOnly ? types : values).push(element.name.text);
      }
      continue;
    }
    if (!exported(statement)) continue;
    if (ts.isInterfaceDeclaration(statement) || ts.isTypeAliasDeclaration(statement)) {
      types.push(statement.name.text);
    } else if (ts.isVariableStatement(statement)) {
      for (const d of statement.declarationList.declarations) values.push(d.name.getText(source));
    } else if (
      (ts.isFunctionDeclaration(statement) || ts.isClassDeclaration(statement)) &&
      statement.name !== undefined
    ) {
      values.push(statement.name.text);
    } else {
      throw new Error(`${path}: an export this test cannot name: ${statement.getText(source)}`);
    }
  }
  return { values: values.sort(), types: types.sort() };
}

let built: BuiltPackage;

beforeAll(async () => {
  built = await buildPackage();
});

afterAll(async () => {
  await built?.remove();
});

describe('public API', () => {
  for (const entry of ENTRIES) {
    const name = entry === 'index' ? 'retrykit' : `retrykit/${entry.replace(/\/index$/, '')}`;

    it(`${name}: the built ESM and CJS files export what the source names`, async () => {
      const { values } = sourceExports(entry);
      expect(Object.keys(await built.esm(entry)).sort()).toEqual(values);
      expect(Object.keys(built.cjs(entry)).sort()).toEqual(values);
    });

    it(`${name}: exports are the snapshot, values within budget`, () => {
      const exports = sourceExports(entry);
      expect(exports.values.length).toBeLessThanOrEqual(
        VALUE_BUDGET[entry] ?? SUBPATH_VALUE_BUDGET,
      );
      expect(exports).toMatchSnapshot();
    });
  }
});
