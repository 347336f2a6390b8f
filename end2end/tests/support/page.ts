// Finding things on the dashboard's pages, and acting on them as a person would.
import { Download, expect, Page } from '@playwright/test';
import type { Server } from './server';

/** Signs the page's browser in the way a person does: by opening the one-time link the
 *  server printed (it sets the session cookie and lands on the dashboard). */
export async function signIn(page: Page, server: Server): Promise<void> {
  await page.goto(await server.nextSignInLink());
  await expect(page).toHaveURL(`${server.url}/`);
}

/** Signs in (once per browser context), opens `path` and waits for the live connection. */
export async function openConnected(page: Page, server: Server, path = '/'): Promise<void> {
  const cookies = await page.context().cookies(server.url);
  if (!cookies.some((c) => c.name === 'switchboard_session')) await signIn(page, server);
  await page.goto(`${server.url}${path}`);
  await expect(page.getByTestId('connection-state')).toHaveText('connected');
}

export function stage(page: Page, id: string) {
  return page.locator(`[data-testid="stage"][data-stage="${id}"]`);
}

export function runState(page: Page) {
  return page.locator('.run-head').getByTestId('state');
}

/** The terminal's export, as lines. */
export async function exportedLines(page: Page): Promise<string[]> {
  const [download]: [Download, void] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('term-export').click(),
  ]);
  const path = await download.path();
  const fs = await import('node:fs');
  const text = fs.readFileSync(path!, 'utf8');
  return text.split('\n').slice(0, -1);
}

/** How many lines the terminal says it holds. */
export async function terminalCount(page: Page): Promise<number> {
  const text = (await page.getByTestId('term-count').textContent()) ?? '';
  return Number(/(\d+) lines/.exec(text)?.[1] ?? 0);
}
