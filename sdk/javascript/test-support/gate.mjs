// The web gate (SPEC §11) end to end in headless Chromium, behind a real
// proxy (nginx or Caddy) in front of the real otp-server and the testkit's
// sample application. Run by crates/otp-server/tests/server/gate_e2e.rs,
// which starts every component and then checks what the application and
// the SMTP sink saw; this script does what a person does in the browser and
// checks what the person sees.
//
// Environment (set by the Rust test):
//   GATE_ORIGIN        the gate's origin through the proxy, e.g.
//                      http://127.0.0.1:8123 (= GATE_URL)
//   GATE_APP_ORIGIN    optional: the protected application's origin when it
//                      is another host (cross-subdomain layout); defaults
//                      to GATE_ORIGIN (same-host layout)
//   GATE_HOST_MAP      optional: a Chromium --host-resolver-rules value,
//                      e.g. "MAP *.example.test 127.0.0.1"
//   GATE_PATH          the gate's path (/auth)
//   GATE_MAIL_DIR      the SMTP sink's directory (one JSON file per message)
//   GATE_IDENTITY      an identity GATE_ALLOWED_IDENTITIES allows
//   GATE_OUTSIDER      an identity it refuses
//   GATE_DEFAULT_REDIRECT  GATE_DEFAULT_REDIRECT of the server
//   GATE_ACCESS_TTL_MS how long an access token lives (ACCESS_TOKEN_TTL)
//   GATE_SHOTS         optional: a directory for screenshots of each page
//                      (phone and desktop widths)
//   GATE_AXE=1         optional: run axe-core on each page
//
// Prints one line `GATE_RESULT <json>` and exits 0, or prints why and
// exits 1.
import http from 'node:http';
import { readdirSync, readFileSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { CHROMIUM, CHROMIUM_ARGS, findChromium } from './browser.mjs';

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const ORIGIN = env('GATE_ORIGIN');
const APP_ORIGIN = process.env.GATE_APP_ORIGIN || ORIGIN;
const HOST_MAP = process.env.GATE_HOST_MAP || null;
const GATE = env('GATE_PATH');
const MAIL_DIR = env('GATE_MAIL_DIR');
const IDENTITY = env('GATE_IDENTITY');
const OUTSIDER = env('GATE_OUTSIDER');
const DEFAULT_REDIRECT = env('GATE_DEFAULT_REDIRECT');
const ACCESS_TTL_MS = Number(env('GATE_ACCESS_TTL_MS'));
const SHOTS = process.env.GATE_SHOTS || null;
const AXE = process.env.GATE_AXE === '1';

const VIEWPORTS = { phone: { width: 390, height: 844 }, desktop: { width: 1280, height: 800 } };

/** Messages the SMTP sink accepted so far, oldest first. */
function mails() {
  return readdirSync(MAIL_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.parse(readFileSync(join(MAIL_DIR, f), 'utf8')));
}

/** Waits (at most 10 s) for message number `count` and returns its code. */
async function codeFromMail(count, to) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const all = mails();
    if (all.length >= count) {
      const mail = all[count - 1];
      if (!mail.rcpt_tos.includes(to)) throw new Error(`mail ${count} went to ${mail.rcpt_tos}, not ${to}`);
      const text = mail.parts.map((p) => p.content).join('\n');
      const m = /verification code is (\d+)/.exec(text);
      if (!m) throw new Error(`no code in mail ${count}: ${text}`);
      return m[1];
    }
    if (Date.now() > deadline) throw new Error(`mail ${count} did not arrive (the sink has ${all.length})`);
    await sleep(50);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function check(ok, what) {
  if (!ok) throw new Error(what);
}

/** Records the URL of every main-frame navigation request (redirect hops included). */
function recordNavigations(page) {
  const hops = [];
  page.on('request', (req) => {
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) hops.push(req.url());
  });
  return hops;
}

let axeSource = null;
/** axe-core's serious and critical violations on the current page. */
async function audit(page, name, report) {
  if (!AXE) return;
  if (!axeSource) {
    const require = createRequire(import.meta.url);
    axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
  }
  report.axe[name] = await axeRun(page);
}

/** Runs axe-core in `page`: its violations and how many rules passed. */
async function axeRun(page) {
  // Evaluated through the DevTools protocol, so the page's strict CSP
  // (no scripts at all) does not block it.
  await page.evaluate(axeSource);
  return page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document);
    return {
      violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.html) })),
      passes: r.passes.length,
    };
  });
}

/** The audit can fail: a field without a label is a serious violation. */
async function auditSelfTest(browser, report) {
  if (!AXE) return;
  const page = await browser.newPage();
  await page.setContent('<!doctype html><html lang="en"><title>t</title><main><input type="text"></main></html>');
  await audit(page, 'self-test', report);
  await page.close();
}

/** Screenshots of the current page at phone and desktop widths. */
async function shoot(page, name, report) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  const before = page.viewportSize();
  for (const [label, size] of Object.entries(VIEWPORTS)) {
    await page.setViewportSize(size);
    const file = join(SHOTS, `${name}-${label}.png`);
    await page.screenshot({ path: file, fullPage: true });
    report.shots.push(file);
  }
  await page.setViewportSize(before);
}

async function pageChecks(page, name, report) {
  await audit(page, name, report);
  await shoot(page, name, report);
}

/**
 * Another site (its own origin on 127.0.0.1) whose page holds a form that
 * posts `fields` to `action` on the gate, the way a CSRF attack does: it
 * cannot know the CSRF field bound to the victim's cookie.
 */
async function startAttackerSite(action, fields) {
  const inputs = Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${k}" value="${v}">`).join('');
  const html = `<!doctype html><html lang="en"><title>Win a prize</title><main>
    <form method="post" action="${action}">${inputs}<button type="submit">Claim</button></form></main></html>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(html);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/`, close: () => new Promise((r) => server.close(r)) };
}

/** Opens the attacker's page in `context` (the victim's browser) and submits it; the gate's answer. */
async function crossSitePost(context, action, fields, audited = null) {
  const site = await startAttackerSite(action, fields);
  const page = traced(await context.newPage());
  try {
    await page.goto(site.url);
    const [response] = await Promise.all([page.waitForNavigation(), page.click('button')]);
    if (audited) await audit(page, audited.name, audited.report);
    return { status: response.status(), text: await page.locator('body').innerText() };
  } finally {
    await page.close();
    await site.close();
  }
}

const onLoginPage = (page) => new URL(page.url()).pathname === `${GATE}/login`;

/** Types `identity` on the login page and sends it; returns on the code page. */
async function askForCode(page, identity) {
  check(onLoginPage(page), `expected the sign-in page, on ${page.url()}`);
  await page.fill('#identity', identity);
  await Promise.all([page.waitForNavigation(), page.click(`form[action="${GATE}/login"] button[type=submit]`)]);
  check(await page.locator('#otp').count() === 1, `no code field after sending ${identity}: ${await page.content()}`);
}

/** Types `code` on the code page and sends it. */
async function enterCode(page, code) {
  await page.fill('#otp', code);
  await Promise.all([page.waitForNavigation(), page.click(`form[action="${GATE}/verify"] button[type=submit]`)]);
}

async function appSubject(page) {
  const el = page.locator('#subject');
  return (await el.count()) === 1 ? el.textContent() : null;
}

/** The visible text of the page's main element with `identity` blanked out. */
async function shape(page, identity) {
  const text = await page.locator('main').innerText();
  const fields = await page.locator('main input').evaluateAll((els) => els.map((e) => `${e.type}:${e.name}`));
  return { text: text.split(identity).join('<identity>'), fields };
}

/** Every page's main-frame responses, printed when the run fails. */
const trail = [];
function traced(page) {
  page.on('response', (r) => {
    if (r.request().isNavigationRequest()) trail.push(`${r.status()} ${r.url()} -> ${r.headers().location || ''}`);
  });
  page.on('requestfailed', (r) => trail.push(`FAILED ${r.url()} ${r.failure()?.errorText}`));
  return page;
}

async function run(chromium) {
  const report = { steps: [], axe: {}, shots: [], renewHops: null, mailsSent: 0 };
  const step = (s) => { report.steps.push(s); };
  const args = HOST_MAP ? [...CHROMIUM_ARGS, `--host-resolver-rules=${HOST_MAP}`] : CHROMIUM_ARGS;
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args, timeout: 30_000 });
  try {
    await auditSelfTest(browser, report);
    const context = await browser.newContext({ viewport: VIEWPORTS.desktop });
    const page = traced(await context.newPage());
    const protectedUrl = `${APP_ORIGIN}/reports/q3?year=2026&view=full`;

    // 1. A protected URL: the proxy sends the browser to the sign-in page.
    await page.goto(protectedUrl);
    check(onLoginPage(page), `the protected URL did not lead to the sign-in page but to ${page.url()}`);
    check(new URL(page.url()).searchParams.get('rd') === protectedUrl,
      `the sign-in page lost the protected URL: ${page.url()}`);
    step('protected URL → sign-in page');
    await pageChecks(page, 'login', report);

    // 2. Identity → code page; the code arrives by mail.
    const sentBefore = mails().length;
    await askForCode(page, IDENTITY);
    await pageChecks(page, 'code', report);
    const code = await codeFromMail(sentBefore + 1, IDENTITY);
    step('identity → code page, code by mail');

    // 3. A wrong code first: the error is on the page, tied to the field.
    const wrong = code === '000000' ? '111111' : '000000';
    await enterCode(page, wrong);
    check(await page.locator('#otp[aria-invalid="true"]').count() === 1, 'a wrong code is not marked on its field');
    await pageChecks(page, 'code-error', report);
    step('wrong code → error on the field');

    // 4. The right code: back on the protected URL, signed in.
    await enterCode(page, code);
    check(page.url() === protectedUrl, `after the code the browser is on ${page.url()}, not ${protectedUrl}`);
    check(await appSubject(page) === IDENTITY, `the application does not show ${IDENTITY}: ${await page.content()}`);
    step('code → back on the protected URL as the identity');
    const cookies = await context.cookies();
    report.cookies = cookies.map(({ name, path, domain, httpOnly, secure, sameSite }) =>
      ({ name, path, domain, httpOnly, secure, sameSite }));

    // 5. The access cookie expires: a reload passes through one renew
    //    redirect and shows the page; no code is sent.
    const sentAtRenew = mails().length;
    await sleep(ACCESS_TTL_MS + 1_500);
    const hops = recordNavigations(page);
    await page.reload();
    report.renewHops = hops.slice();
    const renews = hops.filter((u) => new URL(u).pathname === `${GATE}/renew`).length;
    check(renews === 1, `expected one renew redirect, saw ${JSON.stringify(hops)}`);
    check(page.url() === protectedUrl, `after renewing the browser is on ${page.url()}`);
    check(await appSubject(page) === IDENTITY, 'after renewing the application does not show the identity');
    await sleep(500);
    check(mails().length === sentAtRenew, 'renewing sent a code');
    step('access cookie expired → one renew redirect, no new code');

    // CSRF from another site in the same browser: a forged sign-out is
    // refused and the session goes on; a forged sign-in sends no code.
    const forgedLogout = await crossSitePost(context, `${ORIGIN}${GATE}/logout`, { everywhere: 'on' },
      { name: 'refused', report });
    check(forgedLogout.status === 403 && /Request refused/.test(forgedLogout.text),
      `a cross-site sign-out was not refused: ${forgedLogout.status} ${forgedLogout.text}`);
    await page.reload();
    check(await appSubject(page) === IDENTITY, 'a refused cross-site sign-out still ended the session');
    const sentForged = mails().length;
    const forgedLogin = await crossSitePost(context, `${ORIGIN}${GATE}/login`, { identity: IDENTITY, rd: protectedUrl });
    check(forgedLogin.status === 403, `a cross-site sign-in was not refused: ${forgedLogin.status} ${forgedLogin.text}`);
    await sleep(500);
    check(mails().length === sentForged, 'a cross-site sign-in sent a code');
    step('cross-site sign-out and sign-in posts → refused, session intact, no code');
    hops.length = 0;

    // 6. Sign out: GET shows a button, the POST ends the session.
    await page.goto(`${ORIGIN}${GATE}/logout`);
    check(await page.locator(`form[action="${GATE}/logout"] button[type=submit]`).count() === 1, 'no sign-out button');
    await pageChecks(page, 'logout', report);
    await Promise.all([page.waitForNavigation(), page.click(`form[action="${GATE}/logout"] button[type=submit]`)]);
    step(`sign out → ${new URL(page.url()).pathname}`);
    await page.goto(protectedUrl);
    check(onLoginPage(page), `after signing out the protected URL shows ${page.url()}, not the sign-in page`);
    step('after sign-out the protected URL asks for sign-in');

    // 7. Renewing with no session at all lands on the sign-in page.
    const fresh = await browser.newContext({ viewport: VIEWPORTS.desktop });
    const other = traced(await fresh.newPage());
    await other.goto(`${ORIGIN}${GATE}/renew?rd=${encodeURIComponent(protectedUrl)}`);
    check(onLoginPage(other), `renew without a session shows ${other.url()}`);
    await pageChecks(other, 'renew-failed', report);
    step('renew without a session → sign-in page');

    // 8. A foreign rd is ignored: after sign-in the default redirect.
    const foreign = 'https://evil.example/steal?c=1';
    await other.goto(`${ORIGIN}${GATE}/login?rd=${encodeURIComponent(foreign)}`);
    const sentForeign = mails().length;
    await askForCode(other, IDENTITY);
    await enterCode(other, await codeFromMail(sentForeign + 1, IDENTITY));
    check(other.url() === DEFAULT_REDIRECT, `a foreign rd led to ${other.url()}, not ${DEFAULT_REDIRECT}`);
    step('foreign rd → the default redirect');

    // 9. An identity outside GATE_ALLOWED_IDENTITIES: the same page, no code.
    const third = traced(await (await browser.newContext({ viewport: VIEWPORTS.desktop })).newPage());
    await third.goto(`${ORIGIN}${GATE}/login?rd=${encodeURIComponent(protectedUrl)}`);
    const sentOutsider = mails().length;
    await askForCode(third, OUTSIDER);
    const refused = await shape(third, OUTSIDER);
    await third.goto(`${ORIGIN}${GATE}/login?rd=${encodeURIComponent(protectedUrl)}`);
    await askForCode(third, IDENTITY);
    const accepted = await shape(third, IDENTITY);
    check(JSON.stringify(refused) === JSON.stringify(accepted),
      `a refused identity sees another page: ${JSON.stringify(refused)} vs ${JSON.stringify(accepted)}`);
    await codeFromMail(sentOutsider + 1, IDENTITY);
    await sleep(500);
    check(mails().length === sentOutsider + 1, 'the refused identity got a code');
    check(mails().every((m) => !m.rcpt_tos.includes(OUTSIDER)), 'a mail went to the refused identity');
    step('refused identity → the same code page, no code');

    report.mailsSent = mails().length;
    return report;
  } finally {
    await browser.close();
  }
}

const { reason, chromium } = await findChromium();
if (reason) {
  console.log(`GATE_SKIP ${reason}`);
  process.exit(0);
}
try {
  const report = await run(chromium);
  console.log(`GATE_RESULT ${JSON.stringify(report)}`);
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  console.error(`navigations:\n${trail.join('\n')}`);
  process.exit(1);
}
