// The examples together, as a person uses them (docs/adopting.md, part 1): the React
// page (examples/react-app, built by Vite and served by `vite preview`, whose proxy
// forwards /api and /ws to Switchboard and /backend to the backend) shows live what
// the FastAPI backend (examples/fastapi-app, with the Python client) publishes: an
// AI-style generation on `session:{id}`, and a project, an external run the backend
// executes, that waits at its confirmation gate until the page confirms it.
// Switchboard is then killed (SIGKILL) and started again on its port and data folder:
// the page and the backend reconnect by themselves, and both flows go on.
// The kill comes while the run waits at its gate, when nothing of it is published, so
// what the page must show afterwards is exact. (Killed mid-stage, the crash's new epoch
// makes the page's `useTopic` read the topic's history again: covered by the client's
// own test, clients/js/test/react.test.js.)
import { expect, test, type Page } from '@playwright/test';
import * as fs from 'node:fs';
import { freePort, Server } from './support/server';
import { buildPage, Child, startBackend, startPage } from './support/examples';

// what the backend publishes (examples/fastapi-app/app.py)
const STEPS = ['reading the prompt', 'choosing words', 'drafting', 'counting syllables', 'polishing'];
const SCENES = ['INT. CONTROL ROOM - NIGHT', 'A wall of progress bars.', 'One of them stalls.', 'FADE OUT.'];
const FRAMES = Array.from({ length: 12 }, (_, i) => `rendered frame ${i + 1}/12`);

let server: Server;
let backend: Child | undefined;
let site: Child | undefined;
let outDir: string | undefined;

test.beforeAll(async () => {
  // the page's origin must be allowed to open the WebSocket and to confirm: its port
  // is chosen first
  const pagePort = await freePort();
  server = new Server(await freePort(), {
    SWITCHBOARD_ALLOWED_ORIGINS: `http://127.0.0.1:${pagePort}`,
    // as shipped: an external run needs no inline pipelines
    SWITCHBOARD_INLINE_PIPELINES: 'off',
  });
  await server.start();
  // one token for every browser, as the backend's README mints it
  const browserToken = server.mintToken(['--sub-topics', 'session:*,workflow:*', '--control'], 'demo-user');
  backend = await startBackend(server, browserToken, { DEMO_STEP_S: '0.2' });
  outDir = buildPage();
  site = await startPage(outDir, pagePort, server.url, backend.url);
});

test.afterEach(async ({}, testInfo) => {
  if (testInfo.status === testInfo.expectedStatus) return;
  for (const [name, log] of [
    ['switchboard.log', server?.log],
    ['backend.log', backend?.log],
    ['vite.log', site?.log],
  ]) {
    if (log) await testInfo.attach(name!, { body: log, contentType: 'text/plain' });
  }
});

test.afterAll(async () => {
  await site?.stop();
  await backend?.stop();
  await server?.stop();
  if (outDir) fs.rmSync(outDir, { recursive: true, force: true });
});

function stage(page: Page, id: string) {
  return page.locator(`[data-testid="stage"][data-stage="${id}"]`);
}

async function generate(page: Page, prompt: string): Promise<void> {
  await page.getByLabel('prompt').fill(prompt);
  await page.getByTestId('generate').click();
}

test('the React page shows the FastAPI backend\'s session and project live, through a Switchboard SIGKILL', async ({ page }) => {
  const consoleErrors: string[] = [];
  page.on('pageerror', (e) => consoleErrors.push(String(e)));

  const session = `e2e-${Date.now().toString(36)}`;
  const connection = page.getByTestId('connection');
  const messages = page.getByTestId('ai-message');
  const result = page.getByTestId('ai-result');
  const progress = page.getByTestId('ai-progress');
  const runState = page.getByTestId('run-state');
  const terminal = page.getByTestId('terminal-line');
  const confirm = page.getByTestId('confirm');

  await test.step('the page connects with the token the backend hands out', async () => {
    await page.goto(`${site!.url}/?session=${session}`);
    await expect(connection).toHaveText('connected');
    await expect(page.getByTestId('session-id')).toHaveText(session);
    await expect(messages).toHaveCount(0);
  });

  await test.step('Generate: the progress, each step once, and the result', async () => {
    await generate(page, 'a haiku before the crash');
    await expect(result).toContainText('a haiku before the crash is done.');
    await expect(messages).toHaveText(STEPS);
    await expect(progress).toHaveAttribute('data-value', '1.00');
  });

  let runId = '';
  await test.step('Start a project: the backend runs `script`, then the run waits at the gate', async () => {
    await page.getByTestId('start-project').click();
    await expect(page.getByTestId('run')).toBeVisible();
    runId = (await page.getByTestId('run').getAttribute('data-run-id'))!;
    expect(runId).toMatch(/^video-/);
    await expect(page).toHaveURL(new RegExp(`[?&]project=${runId}(&|$)`));
    await expect(runState).toHaveText('waiting_confirmation');
    await expect(stage(page, 'script')).toHaveAttribute('data-status', 'waiting_confirmation');
    await expect(stage(page, 'render')).toHaveAttribute('data-status', 'pending');
    await expect(terminal).toHaveText(SCENES);
    await expect(confirm).toBeEnabled();
    await expect(page.getByTestId('pause')).toBeDisabled();
  });

  await test.step('SIGKILL Switchboard: the page shows it; started again, the page reconnects by itself', async () => {
    await server.stop('SIGKILL');
    await expect(connection).toHaveText('connecting');
    await expect(confirm).toBeEnabled(); // nothing the page had is lost meanwhile
    await server.start();
    await expect(connection).toHaveText('connected', { timeout: 40_000 });
  });

  await test.step('after the restart: the run still waits at its gate, and nothing is shown twice', async () => {
    // the run's topic is durable: reloaded (a crash gives it a new epoch), the same
    await expect(runState).toHaveText('waiting_confirmation');
    await expect(terminal).toHaveText(SCENES);
    // session:* topics live in memory: the server has lost this one, the page keeps
    // what it showed, once
    await expect(messages).toHaveText(STEPS);
    await expect(result).toContainText('a haiku before the crash is done.');
  });

  await test.step('Generate again: the new generation appears live, each step once', async () => {
    await generate(page, 'a haiku after the crash');
    await expect(result).toContainText('a haiku after the crash is done.');
    await expect(messages).toHaveText(STEPS);
    await expect(progress).toHaveAttribute('data-value', '1.00');
  });

  const lines = [...SCENES, ...FRAMES, '[notice] encoding h264', `wrote poster.png for ${runId}`];
  await test.step('Confirm on the page: the backend renders and encodes, the run completes with its poster', async () => {
    await confirm.click();
    await expect(runState).toHaveText('completed');
    for (const id of ['script', 'render', 'encode']) await expect(stage(page, id)).toHaveAttribute('data-status', 'completed');
    await expect(page.locator('[data-testid="metric"][data-name="psnr"]')).toHaveText('psnr 36 (step 12)');
    await expect(page.locator('[data-testid="metric"][data-name="fps"]')).toHaveText('fps 24 (step 12)');
    const poster = page.locator('[data-testid="artifact"][data-name="poster.png"]');
    await expect(poster).toHaveCount(1);
    await expect.poll(() => poster.locator('img').evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(160);
    // every line once, in order: none lost across the restart, none twice
    await expect(terminal).toHaveText(lines);
    await expect(confirm).toBeDisabled();
    await expect(page.getByTestId('cancel')).toBeDisabled();
  });

  await test.step('a reload shows what the server kept: the run whole, the generation since the restart', async () => {
    await page.reload();
    await expect(connection).toHaveText('connected');
    await expect(page.getByTestId('session-id')).toHaveText(session);
    await expect(runState).toHaveText('completed');
    await expect(terminal).toHaveText(lines);
    await expect(result).toContainText('a haiku after the crash is done.');
    await expect(messages).toHaveText(STEPS);
  });

  await expect(page.getByTestId('error')).toHaveCount(0);
  await expect(page.getByTestId('action-error')).toHaveCount(0);
  expect(consoleErrors).toEqual([]);
});
