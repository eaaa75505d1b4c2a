#!/usr/bin/env node
// Signs in through mod_msauth in a real browser: Debian's Chromium driven by playwright-core.
//
//   node login.mjs --url START_URL --user alice --screenshot out.png [--click SELECTOR] [--cancel]
//                  [--login-screenshot ms.png] [--callback-path /microsoft_auth]
//                  [--browse URL] [--revoke CONTROL_URL] [--again URL [--again-screenshot p.png]]
//   node login.mjs START_URL alice out.png
//
// Or with the environment: LOGIN_URL, LOGIN_USER, LOGIN_SCREENSHOT, LOGIN_CLICK, LOGIN_CANCEL=1,
// LOGIN_PAGE_SCREENSHOT, LOGIN_CALLBACK_PATH; CHROMIUM overrides /usr/bin/chromium.
//
// Steps: open START_URL; with --click, click SELECTOR on that page (the seed's login button);
// wait for fakems's "Sign in to your account" page; click #user-<name> (or #cancel with
// --cancel); wait until the browser is back on START_URL's origin, past the callback; save a
// full-page screenshot; print one JSON line (final URL, status, page text, the cookies as the
// browser stores them, without their values). Exit status 0 on success, 1 on any failure
// (the JSON line then has "ok": false, the failed step and the error), 2 when the whole run
// overran its time limit. Every step has a 15 s limit, the whole run 60 s.
//
// With --again (continuous access evaluation): once signed in, open --browse URL (a page of the
// app, read as `browse`), POST {"user": USER} to --revoke (fakems's /_fakems/cae: the user's
// session is revoked), then open --again URL: the browser must land on Microsoft's page again
// (`login_page_again`), pick the user there and come back; the landing page read is then that
// one, and the first landing is reported as `first`.
//
// Each run gets a new, empty Chromium profile (--user-data-dir) of its own, removed at the end.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const STEP_MS = 15000;
const RUN_MS = 60000;
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
// The flags this machine needs (see the project's notes on headless Chromium): no GPU, no
// QUIC, and none of Chromium's own background connections, which a closed network refuses.
// playwright-core adds --headless (headless: true), --no-sandbox (chromiumSandbox: false)
// and --user-data-dir (the fresh profile given to launchPersistentContext) itself.
const CHROMIUM_ARGS = [
  '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync',
];

function parseArgs(argv) {
  const opts = {
    url: process.env.LOGIN_URL,
    user: process.env.LOGIN_USER,
    screenshot: process.env.LOGIN_SCREENSHOT,
    click: process.env.LOGIN_CLICK,
    cancel: process.env.LOGIN_CANCEL === '1',
    callbackPath: process.env.LOGIN_CALLBACK_PATH || '/microsoft_auth',
    loginScreenshot: process.env.LOGIN_PAGE_SCREENSHOT,
    browse: null,
    revoke: null,
    again: null,
    againScreenshot: null,
  };
  const positional = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--url') opts.url = value();
    else if (a === '--user') opts.user = value();
    else if (a === '--screenshot') opts.screenshot = value();
    else if (a === '--click') opts.click = value();
    else if (a === '--cancel') opts.cancel = true;
    else if (a === '--callback-path') opts.callbackPath = value();
    else if (a === '--login-screenshot') opts.loginScreenshot = value();
    else if (a === '--browse') opts.browse = value();
    else if (a === '--revoke') opts.revoke = value();
    else if (a === '--again') opts.again = value();
    else if (a === '--again-screenshot') opts.againScreenshot = value();
    else if (a.startsWith('--')) throw new Error(`unknown option ${a}`);
    else positional.push(a);
  }
  if (positional.length > 3) throw new Error('too many arguments');
  if (positional[0] !== undefined) opts.url = positional[0];
  if (positional[1] !== undefined) opts.user = positional[1];
  if (positional[2] !== undefined) opts.screenshot = positional[2];
  if (!opts.url) throw new Error('no start URL (--url or LOGIN_URL)');
  if (!opts.cancel && !opts.user) throw new Error('no user (--user or LOGIN_USER), nor --cancel');
  if (opts.user && !/^[A-Za-z0-9_.-]+$/.test(opts.user)) throw new Error(`bad user name ${opts.user}`);
  if (!opts.screenshot) throw new Error('no screenshot path (--screenshot or LOGIN_SCREENSHOT)');
  if ((opts.browse || opts.revoke || opts.againScreenshot) && !opts.again) {
    throw new Error('--browse, --revoke and --again-screenshot need --again');
  }
  if (opts.again && opts.cancel) throw new Error('--again signs in again: not with --cancel');
  return opts;
}

// Codes and tokens in the URLs we report are replaced by their length.
function redact(u) {
  try {
    const url = new URL(u);
    for (const k of ['code', 'jwt', 'session_state', 'id_token', 'access_token']) {
      if (url.searchParams.has(k)) url.searchParams.set(k, `<${url.searchParams.get(k).length}>`);
    }
    return url.toString();
  } catch {
    return u;
  }
}

function cookieView(c) {
  return {
    name: c.name, domain: c.domain, path: c.path, httpOnly: c.httpOnly, sameSite: c.sameSite,
    secure: c.secure, expires: c.expires, valueLength: c.value.length,
  };
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  const started = Date.now();
  let opts;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    emit({ ok: false, step: 'arguments', error: e.message });
    return 1;
  }
  const appOrigin = new URL(opts.url).origin;
  const report = { ok: false, step: 'launch', start: opts.url, user: opts.cancel ? null : opts.user };
  const navigations = [];   // every main-frame document request, redirects included
  let lastStatus = null;
  let context = null;
  let page = null;
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'msauth-chromium-profile-'));
  report.profile = profile;

  // The whole run's limit: report, and exit (playwright kills the browser on exit).
  const overall = setTimeout(() => {
    emit({ ...report, ok: false, error: `the run took longer than ${RUN_MS / 1000} s`,
           url: page ? redact(page.url()) : null, navigations });
    fs.rmSync(profile, { recursive: true, force: true });
    process.exit(2);
  }, RUN_MS);

  try {
    if (fs.readdirSync(profile).length !== 0) throw new Error(`profile ${profile} is not empty`);
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      chromiumSandbox: false,
      args: CHROMIUM_ARGS,
      timeout: STEP_MS,
      viewport: { width: 1000, height: 700 },
    });
    report.browser = context.browser()?.version() ?? null;
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    page.setDefaultNavigationTimeout(STEP_MS);
    page.on('request', (r) => {
      if (r.isNavigationRequest() && r.frame() === page.mainFrame()) {
        navigations.push(`${r.method()} ${redact(r.url())}`);
      }
    });
    page.on('response', (r) => {
      if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) lastStatus = r.status();
    });
    const consoleErrors = [];
    page.on('pageerror', (e) => consoleErrors.push({ text: String(e), url: redact(page.url()) }));
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push({ text: m.text(), url: redact(m.location().url || page.url()) });
    });
    report.page_errors = consoleErrors;

    const onLoginPage = (u) => u.pathname.endsWith('/oauth2/v2.0/authorize');
    const backOnApp = (u) => u.origin === appOrigin && u.pathname !== opts.callbackPath;

    report.step = 'open start URL';
    await page.goto(opts.url, { waitUntil: 'load' });

    if (opts.click) {
      report.step = `click ${opts.click}`;
      await page.locator(opts.click).waitFor({ state: 'visible' });
      await Promise.all([page.waitForURL(onLoginPage, { waitUntil: 'load' }), page.click(opts.click)]);
    }

    report.step = "wait for Microsoft's login page";
    await page.waitForURL(onLoginPage, { waitUntil: 'load' });
    const target = opts.cancel ? '#cancel' : `#user-${opts.user}`;
    await page.locator(target).waitFor({ state: 'visible' });
    report.login_page = redact(page.url());
    report.login_title = await page.title();
    // What the browser holds for the app before it comes back (the state cookie).
    report.cookies_before = (await context.cookies()).map(cookieView);
    if (opts.loginScreenshot) {
      fs.mkdirSync(path.dirname(path.resolve(opts.loginScreenshot)), { recursive: true });
      await page.screenshot({ path: opts.loginScreenshot, fullPage: true, timeout: STEP_MS });
    }

    report.step = `click ${target}`;
    await Promise.all([page.waitForURL(backOnApp, { waitUntil: 'load' }), page.click(target)]);

    if (opts.again) {
      const landing = async () => ({
        url: page.url(), status: lastStatus, title: await page.title(),
        text: await page.evaluate(() => document.body ? document.body.innerText : ''),
      });
      report.first = await landing();
      if (opts.browse) {
        report.step = 'browse';
        await page.goto(opts.browse, { waitUntil: 'load' });
        report.browse = await landing();
      }
      if (opts.revoke) {
        report.step = "revoke the user's session";
        const res = await fetch(opts.revoke, {
          method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ user: opts.user }), signal: AbortSignal.timeout(STEP_MS),
        });
        if (!res.ok) throw new Error(`${opts.revoke} answered ${res.status}`);
        report.revoked = await res.json();
      }
      report.step = 'open the page again';
      const before = navigations.length;
      await page.goto(opts.again, { waitUntil: 'load' });
      report.step = "wait for Microsoft's login page again";
      await page.waitForURL(onLoginPage, { waitUntil: 'load' });
      await page.locator(target).waitFor({ state: 'visible' });
      report.login_page_again = redact(page.url());
      report.navigations_again = navigations.slice(before);
      if (opts.againScreenshot) {
        fs.mkdirSync(path.dirname(path.resolve(opts.againScreenshot)), { recursive: true });
        await page.screenshot({ path: opts.againScreenshot, fullPage: true, timeout: STEP_MS });
      }
      report.step = `click ${target} again`;
      await Promise.all([page.waitForURL(backOnApp, { waitUntil: 'load' }), page.click(target)]);
    }

    report.step = 'read the landing page';
    report.url = page.url();
    report.status = lastStatus;
    report.title = await page.title();
    report.text = await page.evaluate(() => document.body ? document.body.innerText : '');
    report.cookies = (await context.cookies()).map(cookieView);
    report.navigations = navigations;

    report.step = 'screenshot';
    fs.mkdirSync(path.dirname(path.resolve(opts.screenshot)), { recursive: true });
    await page.screenshot({ path: opts.screenshot, fullPage: true, timeout: STEP_MS });
    report.screenshot = opts.screenshot;

    report.step = 'done';
    report.ok = true;
  } catch (e) {
    report.ok = false;
    report.error = String(e && e.message || e).split('\n').slice(0, 8).join('\n').slice(0, 2000);
    report.url = page ? redact(page.url()) : null;
    report.navigations = navigations;
    if (page) {
      try {
        fs.mkdirSync(path.dirname(path.resolve(opts.screenshot)), { recursive: true });
        await page.screenshot({ path: opts.screenshot, fullPage: true, timeout: 5000 });
        report.screenshot = opts.screenshot;
      } catch { /* the error above is what matters */ }
    }
  } finally {
    if (context) {
      try {
        await Promise.race([context.close(), new Promise((r) => setTimeout(r, 10000))]);
      } catch { /* closing a broken browser */ }
    }
    fs.rmSync(profile, { recursive: true, force: true });
    clearTimeout(overall);
  }
  report.elapsed_ms = Date.now() - started;
  emit(report);
  return report.ok ? 0 : 1;
}

main().then((rc) => process.exit(rc), (e) => {
  emit({ ok: false, step: 'internal', error: String(e && e.stack || e) });
  process.exit(1);
});
