// The dashboard shell hydrates, connects to /ws, and shows the connection state as
// the server goes away and comes back.
import { expect, test } from '@playwright/test';
import { Server } from './support/server';
import { signIn } from './support/page';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('shows connected, then reconnecting while the server is down, then connected again', async ({ page }) => {
  await signIn(page, server);
  await expect(page.getByRole('link', { name: 'Dashboard' })).toBeVisible();
  const state = page.getByTestId('connection-state');
  // The server renders "connecting"; only the hydrated app, after `hello`, says "connected".
  await expect(state).toHaveText('connected');
  await expect(page.getByTestId('rtt')).toHaveText(/\d+ ms/);

  await server.stop('SIGTERM');
  await expect(state).toHaveText('reconnecting');

  await server.start();
  await expect(state).toHaveText('connected', { timeout: 30_000 });
});

test('navigates between pages without reloading the connection', async ({ page }) => {
  await signIn(page, server);
  const state = page.getByTestId('connection-state');
  await expect(state).toHaveText('connected');
  await page.getByRole('link', { name: 'Agents' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Agents' })).toBeVisible();
  await expect(page).toHaveURL(/\/agents$/);
  await expect(state).toHaveText('connected');
  await page.goto(`${server.url}/workflows/demo-1`);
  await expect(page.getByRole('heading', { level: 1, name: 'No such run' })).toBeVisible();
  await expect(page.locator('main')).toContainText('demo-1');
  const missing = await page.goto(`${server.url}/no/such/page`);
  expect(missing?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1, name: 'Not found' })).toBeVisible();
});
