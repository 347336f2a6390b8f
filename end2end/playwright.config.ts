import { defineConfig } from '@playwright/test';

// Each spec starts its own server (tests/support/server.ts), so a test can stop and
// restart it. Chromium is Debian's: Playwright's own browser download is not used.
export default defineConfig({
  testDir: './tests',
  // measurements (tagged @perf) run only when asked: PERF=1 npx playwright test perf
  grep: process.env.PERF ? /@perf/ : undefined,
  grepInvert: process.env.PERF ? undefined : /@perf/,
  timeout: 120_000,
  // generous: the debug WASM bundle is 2.6 MB and CI machines are slow and shared
  expect: { timeout: 30_000 },
  fullyParallel: false,
  workers: 1,
  retries: 0,
  reporter: [['list']],
  outputDir: 'test-results',
  use: {
    trace: 'off',
    screenshot: 'only-on-failure',
    launchOptions: {
      executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    },
  },
});
