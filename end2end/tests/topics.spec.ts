// The topic pages: a producer's own topics listed live (last seq, rate, subscribers),
// one topic's events as they arrive (formatted, filtered, paused and followed, older
// ones loaded from history), and the `curl` a page offers publishes the event again.
import { expect, test } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { Server } from './support/server';
import { openConnected } from './support/page';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start();
});

test.afterEach(async () => {
  await server.stop();
});

async function publish(topic: string, event: string, data: unknown): Promise<number> {
  const res = await fetch(`${server.url}/api/v1/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify({ topic, event, data }),
  });
  expect(res.status, await res.clone().text()).toBe(200);
  return (await res.json()).seq;
}

test('the topics page lists a producer topic live, with its seq, rate and subscribers', async ({ page, browser }) => {
  await publish('session:demo', 'ai_start', { prompt: 'hello' });
  await openConnected(page, server, '/topics');
  const row = page.locator('[data-testid="topic"][data-name="session:demo"]');
  await expect(row.getByTestId('topic-seq')).toHaveText('1');
  await expect(row.getByTestId('topic-subscribers')).toHaveText('0');

  // someone watches it: the count follows, and so does the seq as events arrive
  const watcher = await browser.newPage();
  await openConnected(watcher, server, '/topics/session:demo');
  await expect(row.getByTestId('topic-subscribers')).toHaveText('1');
  for (let i = 0; i < 20; i++) await publish('session:demo', 'ai_progress', { progress: i / 20 });
  await expect(row.getByTestId('topic-seq')).toHaveText('21');
  // 20 events within one poll: the next read shows them as a rate above zero
  await expect
    .poll(async () => Number(await row.getByTestId('topic-rate').textContent()), { intervals: [100] })
    .toBeGreaterThan(0);
  await watcher.close();
  await expect(row.getByTestId('topic-subscribers')).toHaveText('0');

  await page.screenshot({ path: 'test-results/screenshots/topics.png' });
  await page.getByTestId('topic-filter').fill('user:');
  await expect(row).toHaveCount(0);
  await page.getByTestId('topic-filter').fill('demo');
  await row.getByRole('link', { name: 'session:demo' }).click();
  await expect(page).toHaveURL(`${server.url}/topics/session:demo`);
  await expect(page.getByTestId('event')).toHaveCount(21);
});

test('a topic page shows events as they arrive, filters, pauses, loads older ones', async ({ page }) => {
  for (let i = 1; i <= 60; i++) await publish('session:feed', i % 2 ? 'odd' : 'even', { i });
  await openConnected(page, server, '/topics/session:feed');
  const events = page.getByTestId('event');
  // the latest 50 from history, newest first, data indented
  await expect(events).toHaveCount(50);
  await expect(events.first()).toHaveAttribute('data-seq', '60');
  await expect(events.first().getByTestId('event-data')).toHaveText('{\n  "i": 60\n}');

  await publish('session:feed', 'ai_complete', { result: 'done' });
  await expect(events.first()).toHaveAttribute('data-seq', '61');
  await expect(events.first().getByTestId('event-name')).toHaveText('ai_complete');

  await page.getByTestId('event-filter').fill('odd');
  await expect(events).toHaveCount(25);
  await page.getByTestId('event-filter').fill('');

  await page.getByTestId('pause').click();
  await publish('session:feed', 'late', { n: 1 });
  await publish('session:feed', 'late', { n: 2 });
  await expect(page.getByTestId('feed-status')).toContainText('2 new while paused');
  await expect(events.first()).toHaveAttribute('data-seq', '61');
  await page.getByTestId('pause').click();
  await expect(events.first()).toHaveAttribute('data-seq', '63');

  await page.getByTestId('load-older').click();
  await expect(events).toHaveCount(63);
  await expect(events.last()).toHaveAttribute('data-seq', '1');
  await expect(page.getByTestId('load-older')).toBeHidden();
  const seqs = await events.evaluateAll((els) => els.map((e) => Number(e.getAttribute('data-seq'))));
  expect(seqs).toEqual(Array.from({ length: 63 }, (_, i) => 63 - i));

  await page.getByTestId('event-filter').fill('ai_complete');
  await page.getByTestId('event').first().getByTestId('copy-curl').click();
  await expect(page.getByTestId('curl')).toBeVisible();
  await page.screenshot({ path: 'test-results/screenshots/topic.png', fullPage: true });
});

test('the copied curl publishes the event again', async ({ page }) => {
  await publish('user:ann', 'greeting', { text: "it's here" });
  await openConnected(page, server, '/topics/user:ann');
  const event = page.getByTestId('event').first();
  await event.getByTestId('copy-curl').click();
  const curl = (await event.getByTestId('curl').textContent()) ?? '';
  expect(curl).toContain(`${server.url}/api/v1/publish`);
  execFileSync('sh', ['-c', curl], { env: { ...process.env, SWITCHBOARD_TOKEN: server.token } });
  const events = page.getByTestId('event');
  await expect(events).toHaveCount(2);
  await expect(events.first()).toHaveAttribute('data-seq', '2');
  await expect(events.first().getByTestId('event-data')).toHaveText('{\n  "text": "it\'s here"\n}');

  // server-owned topics cannot be published to: no curl is offered there
  await openConnected(page, server, '/topics/metrics');
  await expect(page.getByTestId('event').first()).toBeVisible();
  await expect(page.getByTestId('copy-curl')).toHaveCount(0);
});
