#!/usr/bin/env node
// Single sign-out in a real browser: Debian's Chromium driven by playwright-core.
//
//   node frontchannel.mjs --app APP_URL --user alice --ms-logout MS_LOGOUT_URL --foreign FOREIGN_URL
//
// Steps, in one fresh Chromium profile: sign in at APP_URL (a protected page) as the user on
// fakems's page; open FOREIGN_URL (a page of another origin that frames the app's
// front-channel logout URL); open APP_URL again; open MS_LOGOUT_URL (Microsoft's sign-out:
// its page frames the front-channel logout URL of every app of the browser's session, with
// the sid); open APP_URL once more. Prints one JSON line: for each page, its final URL, its
// text, its frames' URLs and the console errors it raised. Exit status 0 when every step
// ran (what happened is for the caller to judge), 1 on a failure, 2 past the run's limit.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const STEP_MS = 15000;
const RUN_MS = 60000;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

function parseArgs(argv) {
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
    const v = argv[++i];
    if (a === '--app') opts.app = v;
    else if (a === '--user') opts.user = v;
    else if (a === '--ms-logout') opts.msLogout = v;
    else if (a === '--foreign') opts.foreign = v;
    else throw new Error(`unknown option ${a}`);
  }
  for (const k of ['app', 'user', 'msLogout', 'foreign']) {
    if (!opts[k]) throw new Error(`--${k} is required`);
  }
  if (!/^[A-Za-z0-9_.-]+$/.test(opts.user)) throw new Error(`bad user name ${opts.user}`);
  return opts;
}

// A sid in a URL we report is replaced by its length: the report is not a place for it.
function redact(u) {
  try {
    const url = new URL(u);
    for (const k of ['code', 'jwt', 'sid', 'session_state', 'id_token']) {
      if (url.searchParams.has(k)) url.searchParams.set(k, `<${url.searchParams.get(k).length}>`);
    }
    return url.toString();
  } catch {
    return u;
  }
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    emit({ ok: false, step: 'arguments', error: e.message });
    return 1;
  }
  const appOrigin = new URL(opts.app).origin;
  const report = { ok: false, step: 'launch', pages: {} };
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'msauth-chromium-profile-'));
  let context = null;
  let page = null;
  const overall = setTimeout(() => {
    emit({ ...report, ok: false, error: `the run took longer than ${RUN_MS / 1000} s` });
    fs.rmSync(profile, { recursive: true, force: true });
    process.exit(2);
  }, RUN_MS);

  let errors = [];
  let status = null;
  // One page's view: where it ended, what it says, its frames, the errors it raised.
  const view = async () => ({
    url: redact(page.url()),
    status,
    text: await page.evaluate(() => (document.body ? document.body.innerText : '')),
    frames: page.frames().filter((f) => f !== page.mainFrame()).map((f) => redact(f.url())),
    console_errors: errors.splice(0),
  });

  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM, headless: true, chromiumSandbox: false, args: CHROMIUM_ARGS,
      timeout: STEP_MS, viewport: { width: 1000, height: 700 },
    });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.setDefaultNavigationTimeout(STEP_MS);
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('response', (r) => {
      if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) status = r.status();
    });
    const onLoginPage = (u) => u.pathname.endsWith('/oauth2/v2.0/authorize');
    const backOnApp = (u) => u.origin === appOrigin && u.pathname === new URL(opts.app).pathname;
    // Frames settle: the page's load event waits for them; a blocked one is in by then too.
    const settle = () => page.waitForTimeout(500);

    report.step = 'sign in';
    await page.goto(opts.app, { waitUntil: 'load' });
    await page.waitForURL(onLoginPage, { waitUntil: 'load' });
    await Promise.all([page.waitForURL(backOnApp, { waitUntil: 'load' }),
                       page.click(`#user-${opts.user}`)]);
    report.pages.signed_in = await view();

    report.step = 'a page of another origin frames the front-channel logout';
    await page.goto(opts.foreign, { waitUntil: 'load' });
    await settle();
    report.pages.foreign = await view();

    report.step = 'back on the app';
    await page.goto(opts.app, { waitUntil: 'load' });
    report.pages.after_foreign = await view();

    report.step = "Microsoft's sign-out page";
    await page.goto(opts.msLogout, { waitUntil: 'load' });
    await settle();
    report.pages.ms_logout = await view();

    report.step = 'back on the app after the sign-out';
    await page.goto(opts.app, { waitUntil: 'load' });
    report.pages.after_sign_out = await view();

    report.step = 'done';
    report.ok = true;
  } catch (e) {
    report.ok = false;
    report.error = String(e && e.message || e).split('\n').slice(0, 8).join('\n').slice(0, 2000);
    report.url = page ? redact(page.url()) : null;
  } finally {
    if (context) {
      try {
        await Promise.race([context.close(), new Promise((r) => setTimeout(r, 10000))]);
      } catch { /* closing a broken browser */ }
    }
    fs.rmSync(profile, { recursive: true, force: true });
    clearTimeout(overall);
  }
  emit(report);
  return report.ok ? 0 : 1;
}

main().then((rc) => process.exit(rc), (e) => {
  emit({ ok: false, step: 'internal', error: String(e && e.stack || e) });
  process.exit(1);
});
