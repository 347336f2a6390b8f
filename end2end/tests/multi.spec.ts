// Two people watch the same run and see the same thing; the agent page shows the
// local executor busy while a stage runs, and idle after.
import { expect, test } from '@playwright/test';
import { Server } from './support/server';
import { startRun, waitForState } from './support/api';
import { exportedLines, openConnected, runState } from './support/page';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start();
});

test.afterEach(async () => {
  await server.stop();
});

test('two pages on one run show the same stages, lines, metrics and chat', async ({ browser }) => {
  const id = await startRun(server, {
    name: 'shared',
    stages: [
      { id: 'warm', run: 'for i in $(seq 1 5); do printf "\\033[3%dmwarm %d\\033[0m\\n" $i $i; sleep 0.1; done' },
      { id: 'fit', run: 'for s in $(seq 1 6); do echo "::metric loss=0.$((9 - s)) step=$s"; echo "step $s"; sleep 0.1; done' },
    ],
  });
  const [a, b] = await Promise.all([browser.newPage(), browser.newPage()]);
  await openConnected(a, server, `/workflows/${id}`);
  await openConnected(b, server, `/workflows/${id}`);
  await a.getByTestId('chat-input').fill('from a');
  await a.getByTestId('chat-input').press('Enter');
  await waitForState(server, id, 'completed');
  for (const p of [a, b]) {
    await expect(runState(p)).toHaveText('completed');
    await expect(p.getByTestId('chat-log')).toContainText('from a');
  }
  const stages = async (p: typeof a) => p.getByTestId('stage').evaluateAll((els) => els.map((e) => e.textContent));
  expect(await stages(a)).toEqual(await stages(b));
  const points = async (p: typeof a) => p.locator('polyline[data-series="loss"]').getAttribute('points');
  expect(await points(a)).toEqual(await points(b));
  const linesA = await exportedLines(a);
  expect(linesA).toHaveLength(11);
  expect(await exportedLines(b)).toEqual(linesA);
  await a.close();
  await b.close();
});

test('the agent page shows local busy while a stage runs', async ({ page }) => {
  await openConnected(page, server, `/agents`);
  const local = page.locator('[data-testid="agent"][data-agent="local"]');
  await expect(local.getByTestId('state')).toHaveText('idle');
  await expect(local.getByTestId('agent-health')).toHaveText('healthy');
  const id = await startRun(server, { name: 'busy', stages: [{ id: 'work', run: 'sleep 7' }] });
  await expect(local.getByTestId('state')).toHaveText('busy');
  await expect(local.getByTestId('agent-task')).toHaveText(`${id}/work`);
  await expect(page.getByTestId('active-workflows')).toHaveText('1', { timeout: 10_000 });
  await expect(local.getByTestId('state')).toHaveText('idle', { timeout: 20_000 });
  await expect(local.getByTestId('agent-messages')).toHaveText('1');
});
