// The metrics bar shows live machine figures with sparklines that grow.
import { expect, test } from '@playwright/test';
import { Server } from './support/server';
import { signIn } from './support/page';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start({ SWITCHBOARD_METRICS_INTERVAL_MS: '300' });
});

test.afterEach(async () => {
  await server.stop();
});

function pointCount(points: string | null): number {
  return (points ?? '').trim().split(/\s+/).filter(Boolean).length;
}

test('CPU figure changes and its sparkline grows', async ({ page }) => {
  await signIn(page, server);
  await expect(page.getByTestId('connection-state')).toHaveText('connected');
  const cpu = page.getByTestId('cpu-value');
  await expect(cpu).toHaveText(/^\d+(\.\d)?%$/);
  const spark = page.getByTestId('metric-cpu').locator('polyline');
  const first = await cpu.textContent();
  const firstPoints = pointCount(await spark.getAttribute('points'));
  expect(firstPoints).toBeGreaterThan(0);
  await expect.poll(async () => pointCount(await spark.getAttribute('points'))).toBeGreaterThan(firstPoints + 2);
  await expect.poll(async () => cpu.textContent(), { timeout: 20_000 }).not.toBe(first);
  await expect(page.getByTestId('memory-value')).toHaveText(/^\d+(\.\d)?%$/);
  // this machine has no NVIDIA GPU: the bar says so rather than failing
  await expect(page.getByTestId('metric-gpu').first()).toContainText(/none|%/);
  await expect(page.getByTestId('metric-queue')).toContainText('0 pending · 0 running');
  await page.screenshot({ path: 'test-results/screenshots/dashboard.png' });
});

test('a page opened later draws the recent past at once', async ({ page }) => {
  await new Promise((r) => setTimeout(r, 2_500)); // ~8 samples before the page exists
  await signIn(page, server);
  const spark = page.getByTestId('metric-cpu').locator('polyline');
  await expect.poll(async () => pointCount(await spark.getAttribute('points'))).toBeGreaterThanOrEqual(6);
});

test('stays readable at 375 px wide', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 700 });
  await signIn(page, server);
  await expect(page.getByTestId('cpu-value')).toHaveText(/%$/);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow).toBeLessThanOrEqual(0);
  await page.screenshot({ path: 'test-results/screenshots/dashboard-375.png', fullPage: true });
});
