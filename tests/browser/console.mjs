// Drives `ferry console` in Debian's headless Chromium for tests/tests/console.rs: reads one
// JSON command a line on standard input, does it in the real page, answers one JSON line on
// standard output ({"ok": true, ...} or {"ok": false, "error": "..."}). Every answer with an
// HTTP error status that a command did not expect is kept and reported by "errors".
//
// Usage: CONSOLE_URL=http://127.0.0.1:PORT node console.mjs
import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const CHROMIUM = '/usr/bin/chromium';
const base = process.env.CONSOLE_URL;
if (!base) {
  console.error('CONSOLE_URL is not set');
  process.exit(2);
}
// Fail loudly, never skip: the browser test exists to run in a browser.
if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} is missing: install Debian's chromium (scripts/lib/browser.sh)`);
  process.exit(3);
}

const profile = mkdtempSync(join(tmpdir(), 'ferry-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 860 },
});
const page = context.pages()[0] ?? await context.newPage();
page.setDefaultTimeout(15000);

// Every answer seen, and those with an error status (4xx/5xx) that no command expected.
const errors = [];
const timings = [];
page.on('response', (r) => {
  const t = r.headers()['server-timing'];
  if (t) timings.push({ url: r.url(), timing: t });
  if (r.status() >= 400) errors.push(`${r.status()} ${r.request().method()} ${r.url()}`);
});
// A CSP violation or script error shows in the console: count it as an error too.
page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));

const url = (path) => new URL(path, base).toString();
const text = async (sel) => (await page.locator(sel).innerText()).trim();

const commands = {
  async signin({ name, token }) {
    await page.goto(url('/users'));
    // Not signed in: the console sends us to its sign-in page.
    if (!page.url().endsWith('/signin')) throw new Error(`not sent to /signin but ${page.url()}`);
    await page.getByLabel('Your name (for the audit log)', { exact: true }).fill(name);
    await page.getByLabel('Sign-in token', { exact: true }).fill(token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL('**/users');
    return { heading: await text('h1') };
  },
  async add_user({ name, home, bucket, policy_arn, keys_only }) {
    await page.goto(url('/users/new'));
    await page.getByLabel('Username', { exact: true }).fill(name);
    await page.getByLabel('Home (prefix in the bucket)', { exact: true }).fill(home);
    if (bucket) await page.getByLabel('Bucket', { exact: true }).fill(bucket);
    if (policy_arn) await page.getByLabel('Scope-down policy ARN', { exact: true }).fill(policy_arn);
    if (keys_only) await page.getByLabel('Keys only', { exact: true }).check();
    await page.getByRole('button', { name: 'Add user' }).click();
    await page.waitForLoadState();
    const flashes = await page.locator('.flash').allInnerTexts();
    const out = page.locator('#generated-password');
    const password = (await out.count()) ? (await out.innerText()).trim() : null;
    if (!flashes.some((f) => f.includes(`User ${name} created`))) {
      throw new Error(`user not created: ${flashes.join(' | ')}`);
    }
    return { password, flashes };
  },
  async search({ prefix }) {
    await page.goto(url('/users'));
    await page.getByLabel('Username starts with', { exact: true }).fill(prefix);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.waitForLoadState();
    const names = await page.locator('table.list tbody tr td:first-child').allInnerTexts();
    return { names: names.map((n) => n.trim()) };
  },
  // Waits up to `seconds` for a decision row of `user` with `outcome` and `reason` on /logins.
  async logins_has({ user, outcome, reason, seconds = 15 }) {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      await page.goto(url('/logins'));
      const rows = await page.locator('#decisions tbody tr').allInnerTexts();
      const hit = rows.find((r) => {
        const cells = r.split('\t').map((c) => c.trim());
        return cells[1] === user && cells[3] === outcome && cells[4] === reason;
      });
      if (hit) return { row: hit };
      if (Date.now() > deadline) throw new Error(`no ${outcome}/${reason} row for ${user}: ${rows.slice(0, 5).join(' | ')}`);
      await page.waitForTimeout(300);
    }
  },
  async disable({ user }) {
    await page.goto(url(`/users/${user}`));
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.waitForLoadState();
    const flashes = await page.locator('.flash').allInnerTexts();
    if (!flashes.some((f) => f.startsWith('Disabled'))) throw new Error(`not disabled: ${flashes.join(' | ')}`);
    return { status: await text('dl.facts dd .badge') };
  },
  async enable({ user }) {
    await page.goto(url(`/users/${user}`));
    await page.getByRole('button', { name: 'Enable' }).click();
    await page.waitForLoadState();
    return { status: await text('dl.facts dd .badge') };
  },
  // Sets one attribute in the user's edit form and saves; the flashes (outcome, validator).
  async edit({ user, label, value }) {
    await page.goto(url(`/users/${user}`));
    await page.getByLabel(label, { exact: true }).fill(value);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForLoadState();
    return { flashes: await page.locator('.flash').allInnerTexts() };
  },
  async add_key({ user, key }) {
    await page.goto(url(`/users/${user}`));
    await page.getByLabel('Add public keys (OpenSSH, one a line)', { exact: true }).fill(key);
    await page.getByRole('button', { name: 'Add keys' }).click();
    await page.waitForLoadState();
    const flashes = await page.locator('.flash').allInnerTexts();
    const fingerprints = await page.locator('code.fp').allInnerTexts();
    return { flashes, fingerprints };
  },
  // Waits up to `seconds` for a notice of `key` with `verdict` on /uploads; its row's text.
  async uploads_has({ key, verdict, seconds = 30 }) {
    const deadline = Date.now() + seconds * 1000;
    for (;;) {
      await page.goto(url('/uploads'));
      const rows = await page.locator('table.list tbody tr').allInnerTexts();
      const hit = rows.find((r) => {
        const cells = r.split('\t').map((c) => c.trim());
        return cells[0] === key && cells[2] === verdict;
      });
      if (hit) return { row: hit };
      if (Date.now() > deadline) throw new Error(`no ${verdict} notice for ${key}: ${rows.slice(0, 5).join(' | ')}`);
      await page.waitForTimeout(300);
    }
  },
  async html({ path }) {
    await page.goto(url(path));
    return { html: await page.content() };
  },
  // Clicks the button (or link) `name` on `path`; the flashes and the main text after.
  async click({ path, name, role = 'button' }) {
    await page.goto(url(path));
    await page.getByRole(role, { name, exact: true }).click();
    await page.waitForLoadState();
    const out = page.locator('#generated-password');
    return {
      flashes: await page.locator('.flash').allInnerTexts(),
      main: await text('main'),
      url: page.url(),
      password: (await out.count()) ? (await out.innerText()).trim() : null,
    };
  },
  async goto({ path }) {
    const r = await page.goto(url(path));
    return { status: r.status(), heading: await text('h1') };
  },
  async screenshot({ path, file }) {
    await page.goto(url(path));
    await page.screenshot({ path: file, fullPage: true });
    return { file };
  },
  // The Server-Timing figure of one GET, in milliseconds, as the browser received it.
  async timing({ path }) {
    const r = await page.goto(url(path));
    const t = r.headers()['server-timing'] ?? '';
    const m = /dur=([0-9.]+)/.exec(t);
    return { ms: m ? Number(m[1]) : null, rows: await page.locator('table.list tbody tr').count() };
  },
  async errors() {
    return { errors: [...errors], pages: timings.length };
  },
};

async function close() {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let cmd;
  try {
    cmd = JSON.parse(line);
  } catch {
    console.log(JSON.stringify({ ok: false, error: 'not JSON' }));
    continue;
  }
  if (cmd.cmd === 'quit') break;
  const run = commands[cmd.cmd];
  if (!run) {
    console.log(JSON.stringify({ ok: false, error: `no command ${cmd.cmd}` }));
    continue;
  }
  try {
    const out = await run(cmd);
    console.log(JSON.stringify({ ok: true, ...out }));
  } catch (e) {
    console.log(JSON.stringify({ ok: false, error: String(e.message ?? e), url: page.url() }));
  }
}
await close();
