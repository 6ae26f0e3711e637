// Drives the WebChat page in headless Chromium: sends a message, waits for the streamed reply.
// Usage: node webchat.mjs <gateway-url> <message> <expected-substring>
// Prints one JSON line: {"reply": "...", "deltas_seen": n, "status": "..."}.
import { argsOr, launchChromium } from './browser.mjs';

const [url, message, expected] = argsOr('node webchat.mjs <gateway-url> <message> <expected-substring>', 3);

const browser = await launchChromium();
try {
  const page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
  await page.goto(url);
  await page.waitForSelector('#status[data-state="ready"]', { timeout: 10000 });
  const status = await page.textContent('#status');

  // Count how many distinct partial texts the reply bubble shows while it streams.
  await page.evaluate(() => {
    window.__partials = new Set();
    new MutationObserver(() => {
      const el = document.querySelector('.msg.assistant');
      if (el && el.classList.contains('streaming') && el.textContent) window.__partials.add(el.textContent);
    }).observe(document.getElementById('log'), { subtree: true, childList: true, characterData: true });
  });
  await page.fill('#input', message);
  await page.press('#input', 'Enter');
  await page.waitForSelector('.msg.assistant[data-done="true"]', { timeout: 20000 });
  const reply = await page.textContent('.msg.assistant[data-done="true"]');
  const deltas = await page.evaluate(() => window.__partials.size);
  await page.screenshot({ path: process.env.SCREENSHOT ?? '/tmp/openclaw-webchat.png' });
  console.log(JSON.stringify({ reply, deltas_seen: deltas, status }));
  if (!reply.includes(expected)) {
    console.error(`reply does not contain ${JSON.stringify(expected)}`);
    process.exit(1);
  }
} finally {
  await browser.close();
}
