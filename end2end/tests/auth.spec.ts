// Auth is on as shipped, and a person gets in the Jupyter way: the server prints a
// one-time sign-in link; without it the page says it is not authorised; with it the
// dashboard works, under a Content-Security-Policy the page satisfies, and the
// short-lived access token of its socket is renewed when it expires, unnoticed.
import { expect, test } from '@playwright/test';
import { Server } from './support/server';

let server: Server;

test.beforeEach(async () => {
  server = await Server.start({ SWITCHBOARD_ACCESS_TTL_S: '3' });
});

test.afterEach(async () => {
  await server.stop();
});

test('signed out: not authorised; signed in by the printed link: everything works', async ({ page }) => {
  const violations: string[] = [];
  page.on('console', (m) => {
    if (/Content Security Policy|Refused to/.test(m.text())) violations.push(m.text());
  });
  await page.goto(server.url);
  await expect(page.getByTestId('connection-state')).toHaveText('unauthorized');
  await expect(page.getByTestId('refused')).toContainText('login link');

  const link = await server.nextSignInLink();
  expect(link).toContain('/login?code=');
  await page.goto(link);
  await expect(page).toHaveURL(`${server.url}/`);
  await expect(page.getByTestId('connection-state')).toHaveText('connected');
  await expect(page.getByTestId('cpu-value')).toHaveText(/%$/);

  // the session works for the API too: start a run from the form
  await page.getByTestId('pipeline-select').selectOption('render-demo');
  await page.getByTestId('start').click();
  await expect(page.getByTestId('run').first().getByTestId('state')).toHaveText('completed', { timeout: 30_000 });

  // the link was spent: opening it again is refused, and the server printed a new one
  const again = await page.request.get(link, { maxRedirects: 0 });
  expect(again.status()).toBe(401);
  await server.waitForLog(/the next sign-in link is/);
  expect(violations, violations.join('\n')).toEqual([]);
});

test('the socket\'s access token expires and is renewed, with nothing lost', async ({ page }) => {
  await page.goto(await server.nextSignInLink());
  await expect(page.getByTestId('connection-state')).toHaveText('connected');
  // the page's own session starts a run that prints across several token lifetimes
  const res = await page.request.post(`${server.url}/api/v1/workflows`, {
    data: { pipeline: { name: 'slow', stages: [{ id: 'count', run: 'for i in $(seq 1 80); do echo "tick $i"; sleep 0.1; done' }] } },
  });
  expect(res.status()).toBe(201);
  const id = (await res.json()).id;
  await page.goto(`${server.url}/workflows/${id}`);
  await expect(page.getByTestId('connection-state')).toHaveText('connected');
  // the token lasts 3 s: the server closes the socket (1008) and the page asks again
  await expect(page.locator('.run-head').getByTestId('state')).toHaveText('completed', { timeout: 30_000 });
  expect((server.log.match(/the access token expired/g) ?? []).length).toBeGreaterThanOrEqual(2);
  await expect(page.getByTestId('connection-state')).toHaveText('connected');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByTestId('term-export').click()]);
  const fs = await import('node:fs');
  const lines = fs.readFileSync((await download.path())!, 'utf8').split('\n').slice(0, -1);
  expect(lines).toEqual(Array.from({ length: 80 }, (_, i) => `tick ${i + 1}`));
});
