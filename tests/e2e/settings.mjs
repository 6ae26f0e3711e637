// Drives the Settings page (ui/settings.js) in headless Chromium against a running gateway: the
// page is reached from the nav by keyboard, an API key is typed into its labelled password field
// and saved (the gateway keeps it in the OS keyring), the field then says "set" and never shows
// the key; a rate limit and a provider are changed and a bad backup schedule refused (the gateway
// writes config.yaml); screenshots in light and dark.
// Usage: node settings.mjs <gateway-url> <screenshot-dir> <key>
// Prints one JSON line: the summary.
import { argsOr, launchChromium } from './browser.mjs';

const [url, shots, key] = argsOr('node settings.mjs <gateway-url> <screenshot-dir> <key>', 3);

const browser = await launchChromium();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 900 } });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => d.accept());
  await page.goto(`${url}#dashboard`);
  await page.focus('header nav a[data-view="settings"]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#view-settings:not([hidden])', { timeout: 5000 });
  const current = await page.getAttribute('header nav a[data-view="settings"]', 'aria-current');
  const focused = await page.evaluate(() => document.activeElement?.id);
  await page.waitForSelector('form.secret[data-secret="anthropic"]', { timeout: 10000 });
  const store = await page.textContent('#secrets-store');
  const before = await page.textContent('form.secret[data-secret="anthropic"] .badge');
  const providers = await page.textContent('#providers tbody');

  // Found by its label, as a screen reader names it; the input hides what is typed.
  const field = page.getByLabel('Anthropic API key', { exact: true });
  const type = await field.getAttribute('type');
  await field.fill(key);
  await page.getByRole('button', { name: 'Save Anthropic API key' }).click();
  await page.waitForFunction(
    () => document.querySelector('form.secret[data-secret="anthropic"] .badge')?.textContent === 'set',
    null, { timeout: 10000 });
  const message = await page.textContent('#settings-message');
  const after = await page.textContent('form.secret[data-secret="anthropic"] .badge');
  const shown = (await page.content()).includes(key);

  // A rate limit changed by its labelled field: the gateway writes it into config.yaml.
  await page.getByLabel('Messages per minute').fill('42');
  await page.getByRole('button', { name: 'Save rate limits' }).click();
  await page.waitForFunction(
    () => document.getElementById('settings-message')?.textContent.startsWith('Rate limits saved'),
    null, { timeout: 10000 });
  const rateSaved = await page.textContent('#settings-message');
  // A provider added: an OpenAI-compatible server on this machine, with no key.
  await page.getByLabel('Kind', { exact: true }).selectOption('openai');
  await page.getByLabel('Provider name').fill('ollama');
  await page.getByLabel('Base URL').fill('http://127.0.0.1:11434/v1');
  await page.getByLabel('Model', { exact: true }).fill('llama3.2');
  const keyFieldHidden = await page.getByLabel('Model file', { exact: true }).isHidden();
  await page.getByRole('button', { name: 'Add provider' }).click();
  await page.waitForFunction(
    () => document.querySelector('#providers tbody')?.textContent.includes('ollama'),
    null, { timeout: 10000 });
  const providersAfter = await page.textContent('#providers tbody');
  const configState = await page.textContent('#config-state');
  // A schedule cron cannot read: refused with the reason, nothing written.
  await page.locator('#backup-schedule').fill('at two');
  await page.getByRole('button', { name: 'Save backups' }).click();
  await page.waitForFunction(
    () => document.getElementById('settings-message')?.className === 'error-text',
    null, { timeout: 10000 });
  const scheduleRefused = await page.textContent('#settings-message');
  await page.screenshot({ path: `${shots}/settings.png`, fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${shots}/settings-dark.png`, fullPage: true });
  console.log(JSON.stringify({
    current, focused, store, before, providers, type, message, after, shown,
    rateSaved, keyFieldHidden, providersAfter, configState, scheduleRefused, errors,
  }));
} finally {
  await browser.close();
}
