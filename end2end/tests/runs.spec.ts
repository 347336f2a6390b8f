// The dashboard's list of runs pages through the server's: the newest 50 first, then
// older ones on request, each once, while new runs keep arriving at the top.
import { expect, test } from '@playwright/test';
import { Server } from './support/server';
import { startRun, waitForState } from './support/api';
import { openConnected } from './support/page';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start({ SWITCHBOARD_CONCURRENCY: '8' });
});

test.afterEach(async () => {
  await server.stop();
});

test('the list shows the newest runs and pages back to the oldest', async ({ page }) => {
  const ids: string[] = [];
  for (let i = 0; i < 55; i++) {
    ids.push(await startRun(server, { name: `batch-${i}`, stages: [{ id: 'a', run: 'true' }] }));
  }
  await waitForState(server, ids[ids.length - 1], 'completed');
  await openConnected(page, server);
  const rows = page.getByTestId('run');
  await expect(rows).toHaveCount(50);
  await expect(rows.first()).toHaveAttribute('data-id', ids[54]);
  await page.getByTestId('older-runs').click();
  await expect(rows).toHaveCount(55);
  await expect(rows.last()).toHaveAttribute('data-id', ids[0]);
  await expect(page.getByTestId('older-runs')).toHaveCount(0);
  // a new run still arrives at the top
  const fresh = await startRun(server, { name: 'fresh', stages: [{ id: 'a', run: 'true' }] });
  await expect(rows.first()).toHaveAttribute('data-id', fresh);
  await expect(rows).toHaveCount(56);
});
