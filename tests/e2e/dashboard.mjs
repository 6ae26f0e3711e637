// Drives the dashboard pages (ui/pages.js) in headless Chromium against a running gateway:
// Dashboard shows health and the pause works both ways; Devices shows a pairing code, and the
// device the caller pairs by it (it reads the code from our stdout) appears in the table.
// Usage: node dashboard.mjs <gateway-url> <screenshot-dir>
// Prints JSON lines: {"code": "123456"} once the code shows, then the summary.
import { argsOr, launchChromium } from './browser.mjs';

const [url, shots] = argsOr('node dashboard.mjs <gateway-url> <screenshot-dir>', 2);

const browser = await launchChromium();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 760 } });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => d.accept());
  await page.goto(`${url}#dashboard`);
  try {
    await page.waitForSelector('#health-status[data-state="healthy"]', { timeout: 10000 });
  } catch (e) {
    const state = await page.evaluate(() => ({
      health: document.getElementById('health-status').textContent,
      error: document.getElementById('dashboard-error').textContent,
      checks: document.getElementById('checks').textContent,
      errors: [],
    }));
    throw new Error(`the dashboard never said healthy: ${JSON.stringify(state)}; page errors: ${errors.join('; ')}`);
  }
  const checks = await page.$$eval('#checks tbody tr', (rows) => rows.map((r) => r.cells[0].textContent));
  const current = await page.getAttribute('header nav a[data-view="dashboard"]', 'aria-current');
  await page.screenshot({ path: `${shots}/dashboard.png` });

  // Pause from the page: health says paused; resume: healthy again.
  await page.click('#pause-toggle');
  await page.waitForSelector('#health-status[data-state="paused"]', { timeout: 10000 });
  const pressed = await page.getAttribute('#pause-toggle', 'aria-pressed');
  await page.click('#pause-toggle');
  await page.waitForSelector('#health-status[data-state="healthy"]', { timeout: 10000 });

  // Keyboard: the nav links are reachable and open their page.
  await page.focus('header nav a[data-view="devices"]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#view-devices:not([hidden])', { timeout: 5000 });
  await page.click('#show-code');
  await page.waitForSelector('#pair-code[data-code]', { timeout: 5000 });
  const code = await page.getAttribute('#pair-code', 'data-code');
  console.log(JSON.stringify({ code }));
  // The caller pairs a node by the code now; the table shows it within the page's refresh.
  await page.waitForSelector('#nodes tbody tr[data-node="phone"]', { timeout: 20000 });
  const row = await page.textContent('#nodes tbody tr[data-node="phone"]');
  await page.screenshot({ path: `${shots}/devices.png` });
  await page.goto(`${url}#chat`);
  await page.waitForSelector('#status[data-state="ready"]', { timeout: 10000 });
  await page.screenshot({ path: `${shots}/chat.png` });
  console.log(JSON.stringify({ checks, current, pressed, code, row, errors }));
} finally {
  await browser.close();
}
