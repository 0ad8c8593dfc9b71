import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium: the only browser these machines have (never a downloaded one). */
export const CHROMIUM = process.env.LABHUB_CHROMIUM ?? '/usr/bin/chromium';

export const chromiumAvailable = () => existsSync(CHROMIUM);

/**
 * Headless Chromium with the flags that work on these machines (no sandbox as root, no background networking).
 * Playwright gives every launch a fresh profile of its own.
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
    ],
  });
}
