// A person starts the training demo from the dashboard and follows it to the end:
// stages advance, progress moves, coloured output appears, the gate is confirmed from
// the page, the run completes and its chart shows the loss.
import { expect, test } from '@playwright/test';
import { Server } from './support/server';
import { openConnected, runState, stage } from './support/page';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('start the training demo, watch it, confirm the gate, see it complete', async ({ page }) => {
  await openConnected(page, server);
  await page.getByTestId('pipeline-select').selectOption('training-demo');
  await expect(page.locator('.form-help')).toContainText('Prepare data');
  await page.getByTestId('start').click();
  await expect(page.getByTestId('toast').first()).toContainText('Started training-demo');

  const row = page.getByTestId('run').first();
  await expect(row).toContainText('training-demo');
  await expect(row.getByTestId('state')).toHaveText(/queued|pending|running/);
  await expect(page.getByTestId('activity')).toContainText('training-demo');
  await row.getByRole('link', { name: 'training-demo' }).click();
  await expect(page).toHaveURL(/\/workflows\/[0-9a-f]+$/);
  await expect(page.getByTestId('run-name')).toHaveText('training-demo');

  // stages advance and progress moves
  await expect(stage(page, 'prepare').getByTestId('state')).toHaveText('completed');
  await expect(stage(page, 'train').getByTestId('state')).toHaveText(/running|completed/);
  const overall = page.locator('.run-head').getByTestId('progress-pct');
  await expect.poll(async () => parseInt((await overall.textContent()) ?? '0', 10)).toBeGreaterThan(25);

  // coloured terminal lines: the green ticks and the bold epochs
  const terminal = page.getByTestId('terminal');
  await expect(terminal.locator('.fg2', { hasText: '✓' }).first()).toBeVisible();
  await expect(terminal.locator('.b', { hasText: 'epoch 1/8' })).toBeVisible();

  // the gate: confirm from the page
  await expect(runState(page)).toHaveText('waiting confirmation', { timeout: 30_000 });
  await expect(stage(page, 'evaluate')).toContainText('waiting for your confirmation');
  // the run's notification, on its page
  await expect(page.getByTestId('notification').first()).toContainText('training-demo is waiting for you');
  await page.getByTestId('confirm').click();
  await expect(runState(page)).toHaveText('completed');
  await expect(page.getByTestId('notification').first()).toContainText('training-demo completed');
  await expect(stage(page, 'export').getByTestId('state')).toHaveText('completed');
  await expect(page.getByTestId('file-artifact')).toContainText('model.bin');

  // the chart holds the loss series, all eight epochs
  await expect(page.getByTestId('series-loss')).toBeVisible();
  const loss = page.locator('polyline[data-series="loss"]');
  await expect.poll(async () => ((await loss.getAttribute('points')) ?? '').trim().split(/\s+/).length).toBe(8);
  await page.locator('.chart-svg').hover({ position: { x: 300, y: 120 } });
  await expect(page.getByTestId('chart-hover')).toContainText('loss');
  await page.screenshot({ path: 'test-results/screenshots/workflow.png', fullPage: true });

  // the dashboard says the same
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await expect(page.getByTestId('run').first().getByTestId('state')).toHaveText('completed');
  await expect(page.getByTestId('activity')).toContainText('training-demo completed');
  await page.screenshot({ path: 'test-results/screenshots/dashboard-runs.png', fullPage: true });
});

test('the render demo fills the gallery, and a frame opens large', async ({ page }) => {
  await openConnected(page, server);
  await page.getByTestId('pipeline-select').selectOption('render-demo');
  await page.getByTestId('start').click();
  await page.getByTestId('toast').getByRole('link', { name: /Started render-demo/ }).click();
  await expect(page.getByTestId('thumb')).toHaveCount(12, { timeout: 30_000 });
  await page.getByRole('button', { name: 'View frame-003.png' }).click();
  const box = page.getByTestId('lightbox');
  await expect(box).toContainText('frame-003.png (4 of 12)');
  await page.keyboard.press('ArrowRight');
  await expect(box).toContainText('frame-004.png');
  const shown = await box.locator('img').evaluate((img: HTMLImageElement) => img.naturalWidth);
  expect(shown).toBe(160);
  await page.keyboard.press('Escape');
  await expect(box).toHaveCount(0);
});

test('a run page is usable at 375 px and by keyboard', async ({ page }) => {
  await page.setViewportSize({ width: 375, height: 800 });
  await openConnected(page, server);
  await page.getByTestId('pipeline-select').selectOption('training-demo');
  await page.getByTestId('start').click();
  await page.getByTestId('toast').getByRole('link', { name: /Started training-demo/ }).click();
  await expect(runState(page)).toHaveText('waiting confirmation', { timeout: 30_000 });
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  expect(overflow, 'nothing wider than the screen').toBeLessThanOrEqual(0);
  // progress is announced to screen readers
  await expect(page.getByTestId('announce')).toContainText('training-demo waiting confirmation');
  // the gate, by keyboard alone
  await page.getByTestId('confirm').focus();
  await page.keyboard.press('Enter');
  await expect(runState(page)).toHaveText('completed');
  await page.screenshot({ path: 'test-results/screenshots/workflow-375.png', fullPage: true });
});
