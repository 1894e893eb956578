// Packaging checks: the generated files are up to date, import and require
// share one module copy through the package's "exports", the tarball carries
// both licence files, the typings type-check, package.json is
// ready to publish, and the README shows the example the e2e suite runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildOutputs, paths } from '../scripts/build.mjs';
import * as esm from '../src/index.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
const require = createRequire(import.meta.url);

test('dist/index.cjs, dist/index.mjs and index.d.cts equal what `npm run build` writes', () => {
  const { cjs, nodeEsm, dcts } = buildOutputs();
  assert.equal(readFileSync(paths.cjs, 'utf8'), cjs, 'dist/index.cjs is stale: run `npm run build`');
  assert.equal(readFileSync(paths.nodeEsm, 'utf8'), nodeEsm, 'dist/index.mjs is stale: run `npm run build`');
  assert.equal(readFileSync(paths.dcts, 'utf8'), dcts, 'index.d.cts is stale: run `npm run build`');
});

test('import and require of the package name share one module copy, so instanceof OTPError holds across them', async () => {
  const viaImport = await import('@stateless-otp/client');
  const viaRequire = require('@stateless-otp/client');
  assert.equal(viaRequire, require('../dist/index.cjs'), 'require resolves to dist/index.cjs');
  assert.deepEqual(Object.keys(viaRequire).sort(), Object.keys(viaImport).sort());
  for (const name of Object.keys(viaRequire)) {
    assert.equal(viaImport[name], viaRequire[name], `import and require give the same ${name}`);
  }
  const thrownByCjs = new viaRequire.OTPError('x', { code: viaRequire.ErrorCode.TIMEOUT });
  assert.ok(thrownByCjs instanceof viaImport.OTPError, 'an OTPError from require() is an instance of the imported class');
  const thrownByEsm = new viaImport.OTPError('x', { code: viaImport.ErrorCode.TIMEOUT });
  assert.ok(thrownByEsm instanceof viaRequire.OTPError);
  assert.equal(viaRequire.default, viaRequire.OTPClient);
  assert.equal(viaImport.default, viaImport.OTPClient);
  assert.equal(viaRequire.VERSION, pkg.version);
  assert.equal(esm.VERSION, pkg.version);
});

test('the "browser" condition resolves to the ESM source alone (what bundlers and import maps load)', () => {
  const probe = "import('@stateless-otp/client').then((m) => console.log(import.meta.resolve('@stateless-otp/client'), typeof m.OTPClient))";
  const out = execFileSync(process.execPath, ['--conditions=browser', '--input-type=module', '-e', probe], { cwd: root, encoding: 'utf8' });
  const [resolved, kind] = out.trim().split(' ');
  assert.ok(resolved.endsWith('/src/index.mjs'), resolved);
  assert.equal(kind, 'function');
});

test('package.json is ready to publish', () => {
  assert.equal(pkg.name, '@stateless-otp/client');
  assert.equal(pkg.dependencies, undefined, 'zero runtime dependencies');
  assert.equal(pkg.engines.node, '>=18');
  assert.ok(pkg.scripts.test);
  const entry = pkg.exports['.'];
  const targets = [pkg.main, pkg.types, entry.import.default, entry.import.types, entry.require.default, entry.require.types];
  for (const target of targets) {
    assert.ok(existsSync(join(root, target)), `${target} exists`);
    const inFiles = pkg.files.some((f) => `./${f}` === target);
    assert.ok(inFiles, `${target} is listed in "files"`);
  }
  for (const target of [entry.browser.default, entry.browser.types]) {
    assert.ok(pkg.files.some((f) => `./${f}` === target), `${target} is listed in "files"`);
  }
  assert.equal(pkg.license, 'MIT OR Apache-2.0', 'the licence the Rust crates declare');
  for (const licence of ['LICENSE-MIT', 'LICENSE-APACHE']) {
    assert.equal(readFileSync(join(root, licence), 'utf8'), readFileSync(join(root, '..', '..', licence), 'utf8'), `${licence} equals the repository's`);
  }
  assert.ok(Object.keys(entry.import)[0] === 'types' && Object.keys(entry.require)[0] === 'types', '"types" comes first in each condition');
});

test('npm pack --dry-run lists both licence files and the three entry points', (t) => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  let listing;
  try {
    listing = execFileSync(npm, ['pack', '--dry-run', '--json', '--ignore-scripts', '--loglevel=error'], { cwd: root, encoding: 'utf8' });
  } catch (err) {
    if (err.code !== 'ENOENT') throw err;
    if (process.env.OTP_E2E_REQUIRE_ALL === '1') throw new Error('OTP_E2E_REQUIRE_ALL=1 but npm is not on PATH');
    t.skip('npm is not on PATH');
    return;
  }
  const files = JSON.parse(listing)[0].files.map((f) => f.path).sort();
  for (const expected of ['LICENSE-APACHE', 'LICENSE-MIT', 'dist/index.cjs', 'dist/index.mjs', 'src/index.mjs', 'package.json']) {
    assert.ok(files.includes(expected), `npm pack includes ${expected}: ${files.join(', ')}`);
  }
});

test('the packed tarball installs and works through import and require', (t) => {
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const work = mkdtempSync(join(tmpdir(), 'otp-js-pack-'));
  try {
    try {
      execFileSync(npm, ['--version'], { encoding: 'utf8' });
    } catch {
      if (process.env.OTP_E2E_REQUIRE_ALL === '1') throw new Error('OTP_E2E_REQUIRE_ALL=1 but npm is not on PATH');
      t.skip('npm is not on PATH');
      return;
    }
    const quiet = ['--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'];
    execFileSync(npm, ['pack', '--pack-destination', work, ...quiet], { cwd: root, encoding: 'utf8' });
    const tarball = readdirSync(work).find((f) => f.endsWith('.tgz'));
    assert.ok(tarball, 'npm pack wrote a tarball');
    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true }));
    execFileSync(npm, ['install', '--offline', ...quiet, join(work, tarball)], { cwd: app, encoding: 'utf8' });
    const probe = [
      "const c = require('@stateless-otp/client');",
      "import('@stateless-otp/client').then((m) => {",
      "  if (typeof c.OTPClient !== 'function' || typeof m.OTPClient !== 'function') process.exit(2);",
      "  if (m.OTPClient !== c.OTPClient) process.exit(3);",
      "  if (!(new c.OTPError('x', { code: 'timeout' }) instanceof m.OTPError)) process.exit(4);",
      "  console.log(new c.OTPClient('http://x/').baseUrl, new m.OTPClient('http://y/').baseUrl);",
      "});",
    ].join('\n');
    const out = execFileSync(process.execPath, ['-e', probe], { cwd: app, encoding: 'utf8' });
    assert.equal(out.trim(), 'http://x http://y');
    const installed = readdirSync(join(app, 'node_modules', '@stateless-otp', 'client')).sort();
    assert.deepEqual(installed, ['LICENSE-APACHE', 'LICENSE-MIT', 'README.md', 'dist', 'index.d.cts', 'index.d.ts', 'package.json', 'src']);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('the typings type-check for ESM and CommonJS users (tsc --strict)', (t) => {
  let tsc;
  try {
    tsc = require.resolve('typescript/bin/tsc');
  } catch {
    const why = 'typescript is not installed (run `npm ci` in sdk/javascript)';
    if (process.env.OTP_E2E_REQUIRE_ALL === '1') throw new Error(`OTP_E2E_REQUIRE_ALL=1 but ${why}`);
    t.skip(why);
    return;
  }
  try {
    execFileSync(process.execPath, [tsc, '-p', join(root, 'test-support', 'types', 'tsconfig.json')], { cwd: root, encoding: 'utf8' });
  } catch (err) {
    assert.fail(`tsc found errors:\n${err.stdout}${err.stderr}`);
  }
});

test('the README shows examples/login.mjs verbatim and names the browser example', () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const example = readFileSync(join(root, 'examples', 'login.mjs'), 'utf8');
  assert.ok(readme.includes(`\`\`\`js\n${example}\`\`\``), 'README.md must contain examples/login.mjs in a ```js block, unchanged');
  assert.ok(readme.includes('examples/browser/'), 'README.md points at the browser example');
});
