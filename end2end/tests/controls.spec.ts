// Acting on a run from its page: pause, resume and cancel reach the stage's process;
// a failing stage shows its error, and Retry reruns it.
import { expect, test } from '@playwright/test';
import { Server } from './support/server';
import { startRun, waitForState } from './support/api';
import { openConnected, runState, stage, terminalCount } from './support/page';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start({ SWITCHBOARD_CANCEL_GRACE_S: '1' });
});

test.afterEach(async () => {
  await server.stop();
});

test('pause, resume and cancel from the page', async ({ page }) => {
  const id = await startRun(server, {
    name: 'ticker',
    stages: [{ id: 'tick', run: 'i=0; while [ $i -lt 600 ]; do i=$((i+1)); echo tick $i; sleep 0.1; done' }],
  });
  await openConnected(page, server, `/workflows/${id}`);
  await expect(runState(page)).toHaveText('running');
  await expect.poll(() => terminalCount(page)).toBeGreaterThan(3);

  await page.getByTestId('pause').click();
  await expect(runState(page)).toHaveText('paused');
  await expect(stage(page, 'tick').getByTestId('state')).toHaveText('paused');
  const paused = await terminalCount(page);
  await page.waitForTimeout(1_000);
  expect(await terminalCount(page), 'a stopped process prints nothing').toBeLessThanOrEqual(paused + 1);

  await page.getByTestId('resume').click();
  await expect(runState(page)).toHaveText('running');
  await expect.poll(() => terminalCount(page)).toBeGreaterThan(paused + 3);

  await page.getByTestId('cancel').click();
  await expect(runState(page)).toHaveText('cancelled');
  await expect(stage(page, 'tick').getByTestId('state')).toHaveText('cancelled');
  await expect(page.getByTestId('pause')).toHaveCount(0);
});

test('a failing stage shows its error, and Retry reruns it', async ({ page }) => {
  const id = await startRun(server, {
    name: 'flaky',
    stages: [
      { id: 'first', run: 'echo first ok' },
      { id: 'flaky', run: 'if [ -f tried ]; then echo second try works; else touch tried; echo failing >&2; exit 3; fi' },
      { id: 'last', run: 'echo after the retry' },
    ],
  });
  await openConnected(page, server, `/workflows/${id}`);
  await expect(runState(page)).toHaveText('failed');
  const flaky = stage(page, 'flaky');
  await expect(flaky.getByTestId('stage-error')).toHaveText('stage "flaky" exited with code 3');
  await expect(stage(page, 'last').getByTestId('state')).toHaveText('skipped');
  await expect(page.getByTestId('terminal').locator('.stderr', { hasText: 'failing' })).toBeVisible();

  await flaky.getByTestId('retry').click();
  await expect(runState(page)).toHaveText('completed');
  await expect(flaky.getByTestId('state')).toHaveText('completed');
  await expect(flaky.getByTestId('stage-error')).toHaveCount(0);
  await expect(stage(page, 'last').getByTestId('state')).toHaveText('completed');
  await expect(stage(page, 'first').getByTestId('state')).toHaveText('completed');
  await expect(page.getByTestId('terminal')).toContainText('after the retry');
  await waitForState(server, id, 'completed');
});

test('chat reaches the run and a stage that reads it', async ({ page }) => {
  const id = await startRun(server, {
    name: 'bot',
    stages: [{ id: 'bot', stdin: 'chat', run: 'read line; echo "heard $line"' }],
  });
  await openConnected(page, server, `/workflows/${id}`);
  await expect(runState(page)).toHaveText('running');
  await page.getByTestId('chat-input').fill('hello there');
  await page.getByTestId('chat-input').press('Enter');
  await expect(page.getByTestId('chat-log')).toContainText('hello there');
  await expect(page.getByTestId('chat-input')).toHaveValue('');
  await expect(page.getByTestId('terminal')).toContainText('heard {');
  await expect(page.getByTestId('terminal')).toContainText('"text":"hello there"');
  await expect(runState(page)).toHaveText('completed');
});
