// Drives the Approvals page (ui/pages.js) in headless Chromium against a running gateway whose
// store the caller seeded with two DM pairing codes: the first is approved on the page and
// shows under approved senders, the second is rejected; screenshots in light and dark; then the
// approved sender is removed.
// Usage: node approvals.mjs <gateway-url> <screenshot-dir> <approve-code> <reject-code>
// Prints one JSON line: the summary.
import { argsOr, launchChromium } from './browser.mjs';

const [url, shots, approveCode, rejectCode] = argsOr('node approvals.mjs <gateway-url> <screenshot-dir> <approve-code> <reject-code>', 4);

const browser = await launchChromium();
const errors = [];
try {
  const page = await browser.newPage({ viewport: { width: 1000, height: 640 } });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('dialog', (d) => d.accept());
  await page.goto(`${url}#dashboard`);
  // Reached from the nav by keyboard, like the other pages.
  await page.focus('header nav a[data-view="approvals"]');
  await page.keyboard.press('Enter');
  await page.waitForSelector('#view-approvals:not([hidden])', { timeout: 5000 });
  const current = await page.getAttribute('header nav a[data-view="approvals"]', 'aria-current');
  const focused = await page.evaluate(() => document.activeElement?.id);
  const pendingRow = `#pending tbody tr[data-code="${approveCode}"]`;
  await page.waitForSelector(pendingRow, { timeout: 10000 });
  await page.waitForSelector(`#pending tbody tr[data-code="${rejectCode}"]`, { timeout: 10000 });
  const pendingText = await page.textContent(pendingRow);
  const noApprovedShown = await page.isVisible('#no-approved');
  await page.screenshot({ path: `${shots}/approvals-pending.png` });

  // Approve by the button's accessible name, as a screen-reader user would find it.
  await page.getByRole('button', { name: 'Approve Ada (42) on telegram' }).click();
  await page.waitForSelector('#approved tbody tr[data-sender="42"]', { timeout: 10000 });
  await page.waitForSelector(pendingRow, { state: 'detached', timeout: 10000 });
  const approvedText = await page.textContent('#approved tbody tr[data-sender="42"]');
  const message = await page.textContent('#approvals-message');

  await page.click(`#pending tbody tr[data-code="${rejectCode}"] button:has-text("Reject")`);
  await page.waitForSelector(`#pending tbody tr[data-code="${rejectCode}"]`, { state: 'detached', timeout: 10000 });
  await page.waitForSelector('#no-pending:not([hidden])', { timeout: 5000 });
  const emptyText = await page.textContent('#no-pending');
  await page.screenshot({ path: `${shots}/approvals.png` });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: `${shots}/approvals-dark.png` });
  await page.emulateMedia({ colorScheme: 'light' });

  // Removed again (the confirm dialog is accepted): the empty state is back.
  await page.getByRole('button', { name: 'Remove Ada (42) on telegram' }).click();
  await page.waitForSelector('#approved tbody tr[data-sender="42"]', { state: 'detached', timeout: 10000 });
  await page.waitForSelector('#no-approved:not([hidden])', { timeout: 5000 });
  const removedMessage = await page.textContent('#approvals-message');
  console.log(JSON.stringify({ current, focused, pendingText, noApprovedShown, approvedText, message, emptyText, removedMessage, errors }));
} finally {
  await browser.close();
}
