// The SDK's ErrorCode list must name every code the server can put in an
// error body: the list is read from the server's one definition
// (crates/otp-core/src/wire.rs, `ErrorCode::as_str`), so a code added there
// fails this test until the SDK knows it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '../src/index.mjs';

const wire = fileURLToPath(new URL('../../../crates/otp-core/src/wire.rs', import.meta.url));

function serverCodes() {
  const source = readFileSync(wire, 'utf8');
  const body = source.slice(source.indexOf('pub fn as_str'));
  const end = body.indexOf('\n    }\n');
  return [...body.slice(0, end).matchAll(/ErrorCode::\w+ => "([a-z_]+)"/g)].map((m) => m[1]);
}

test('the SDK knows every error code the server sends', () => {
  const codes = serverCodes();
  assert.ok(codes.length >= 14, `read ${codes.length} codes from wire.rs`);
  const known = new Set(Object.values(ErrorCode));
  const missing = codes.filter((c) => !known.has(c));
  assert.deepEqual(missing, [], 'add these to ErrorCode in src/index.mjs and both .d.ts files');
});
