// The server dies without warning (SIGKILL) during a run and comes back: the page
// says it is reconnecting, recovers by itself, and its terminal then holds exactly the
// lines of the server's durable log: none missing, none twice.
import { expect, test } from '@playwright/test';
import { Server } from './support/server';
import { loggedLines, startRun, waitForState } from './support/api';
import { exportedLines, openConnected, runState, stage, terminalCount } from './support/page';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('SIGKILL mid-run: reconnecting, then recovered, with exactly the logged lines', async ({ page }) => {
  const id = await startRun(server, {
    name: 'counter',
    stages: [{ id: 'count', run: 'i=0; while true; do i=$((i+1)); echo "line $i"; sleep 0.02; done' }],
  });
  await openConnected(page, server, `/workflows/${id}`);
  await expect.poll(() => terminalCount(page)).toBeGreaterThan(40);

  await server.stop('SIGKILL');
  await expect(page.getByTestId('connection-state')).toHaveText('reconnecting');
  await server.start();
  await expect(page.getByTestId('connection-state')).toHaveText('connected', { timeout: 40_000 });

  // the run could not survive its server: failed, and the page says why
  await waitForState(server, id, 'failed');
  await expect(runState(page)).toHaveText('failed');
  await expect(stage(page, 'count').getByTestId('stage-error')).toHaveText('server restarted');

  const logged = await loggedLines(server, id);
  expect(logged.length).toBeGreaterThan(40);
  await expect.poll(() => terminalCount(page)).toBe(logged.length);
  const shown = await exportedLines(page);
  expect(shown).toEqual(logged);
  expect(new Set(shown).size, 'no line twice').toBe(shown.length);
});

test('a page that was open through a clean restart resumes without reloading', async ({ page }) => {
  const id = await startRun(server, { name: 'short', stages: [{ id: 'a', run: 'for i in 1 2 3; do echo "n $i"; done' }] });
  await waitForState(server, id, 'completed');
  await openConnected(page, server, `/workflows/${id}`);
  await expect.poll(() => terminalCount(page)).toBe(3);
  await server.stop('SIGTERM');
  await expect(page.getByTestId('connection-state')).toHaveText('reconnecting');
  await expect(page.getByTestId('retry-now')).toBeVisible();
  await expect(page.getByTestId('retry-in')).toHaveText(/retry in \d+ s/);
  await server.start();
  // no need to wait out the backoff; the button may already be gone if it reconnected
  await page.getByTestId('retry-now').click({ timeout: 2_000 }).catch(() => {});
  await expect(page.getByTestId('connection-state')).toHaveText('connected');
  await page.getByTestId('chat-input').fill('still here');
  await page.getByTestId('chat-input').press('Enter');
  await expect(page.getByTestId('chat-log')).toContainText('still here');
  expect(await exportedLines(page)).toEqual(['n 1', 'n 2', 'n 3']);
});
