// Headless Chromium as the e2e scripts drive it: Debian's binary (or $CHROMIUM), no sandbox (root
// in CI), no GPU, and nothing that reaches the network on its own.
import { chromium } from 'playwright-core';

export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** The script's arguments, or the usage on stderr and exit 64 when any is missing. */
export function argsOr(usage, count) {
  const args = process.argv.slice(2);
  if (args.length < count || args.slice(0, count).some((a) => !a)) {
    console.error(`usage: ${usage}`);
    process.exit(64);
  }
  return args;
}
