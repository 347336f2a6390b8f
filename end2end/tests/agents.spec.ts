// A second agent, a real `switchboard agent` process on this machine, as the agents
// page shows it: it appears when it connects, with its machine's load; it goes busy
// when a stage that asks for its capability runs on it; it goes offline when killed.
import { expect, test } from '@playwright/test';
import { ChildProcess, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Server, serverBinary } from './support/server';
import { startRun } from './support/api';
import { openConnected, runState, stage } from './support/page';

let server: Server;
let agent: ChildProcess | undefined;

test.beforeEach(async () => {
  server = await Server.start({ SWITCHBOARD_AGENT_GRACE_S: '2' });
});

test.afterEach(async () => {
  agent?.kill('SIGKILL');
  await server.stop();
});

function startAgent(name: string, capabilities: string): ChildProcess {
  const token = server.mintToken(['--agent'], name);
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-agent-'));
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LEPTOS_') && !k.startsWith('SWITCHBOARD_')));
  const child = spawn(
    serverBinary,
    ['agent', '--server', server.url, '--name', name, '--capabilities', capabilities, '--work-dir', work, '--metrics-interval-ms', '300'],
    { env: { ...env, SWITCHBOARD_TOKEN: token }, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.on('data', (d) => (server.log += `[agent ${name}] ${d}`));
  return child;
}

test('the agents page shows a second agent connect, go busy with its stage, then go offline', async ({ page }) => {
  await openConnected(page, server, '/agents');
  await expect(page.locator('[data-testid="agent"][data-agent="local"]')).toBeVisible();
  agent = startAgent('gpu-2', 'gpu,cuda');
  const card = page.locator('[data-testid="agent"][data-agent="gpu-2"]');
  await expect(card.getByTestId('state')).toHaveText('idle');
  await expect(card).toContainText('gpu, cuda');
  await expect(card.getByTestId('agent-running')).toHaveText('0 of 1');
  await expect(page.getByTestId('registered-agents')).toHaveText('2');
  await expect(page.getByTestId('healthy-agents')).toHaveText('2');
  // its machine's load, as sparklines that fill in
  await expect(card.getByTestId('agent-cpu').locator('polyline')).toBeVisible();
  await expect(card.getByTestId('agent-memory')).toContainText('%');

  const id = await startRun(server, { name: 'on-gpu', stages: [{ id: 'render', runs_on: ['gpu'], run: 'sleep 30' }] });
  await expect(card.getByTestId('state')).toHaveText('busy');
  await expect(card.getByTestId('agent-task')).toHaveText(`${id}/render`);
  await expect(card.getByTestId('agent-running')).toHaveText('1 of 1');
  await expect(page.getByTestId('active-workflows')).toHaveText('1');
  await expect(page.locator('[data-testid="agent"][data-agent="local"]').getByTestId('state')).toHaveText('idle');
  await page.screenshot({ path: 'test-results/screenshots/agents.png', fullPage: true });

  agent.kill('SIGKILL');
  agent = undefined;
  await expect(card.getByTestId('state')).toHaveText('offline');
  await expect(card.getByTestId('agent-last-seen')).toContainText('ago');
  await expect(page.getByTestId('healthy-agents')).toHaveText('1');
  // its stage: lost after the 2 s grace, and the run page says so
  await page.goto(`${server.url}/workflows/${id}`);
  await expect(runState(page)).toHaveText('failed');
  await expect(stage(page, 'render').getByTestId('stage-error')).toContainText('agent lost');
});

test('an external run reported over HTTP shows on its page like any other, and its gate is confirmed there', async ({ page }) => {
  const backend = server.mintToken(['--agent'], 'backend');
  const res = await fetch(`${server.url}/api/v1/workflows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${server.token}` },
    body: JSON.stringify({ id: 'demo-project', pipeline: { name: 'video', executor: 'backend', stages: [{ id: 'render', confirm: true }, { id: 'encode' }] } }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  const seqs: Record<string, number> = {};
  // the backend's side: one POST per tick, as `requests.post` would do it
  const report = async (stageId: string, kind: object) => {
    seqs[stageId] = (seqs[stageId] ?? 0) + 1;
    const r = await fetch(`${server.url}/api/v1/workflows/demo-project/reports`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${backend}` },
      body: JSON.stringify({ reports: [{ run: 'demo-project', stage: stageId, attempt: 1, seq: seqs[stageId], ...kind }] }),
    });
    expect(r.status, await r.clone().text()).toBe(200);
  };
  const out = (lines: string[]) => ({ kind: 'output', stream: 'stdout', lines });

  await openConnected(page, server, '/workflows/demo-project');
  await expect(page.getByTestId('run-name')).toHaveText('video');
  await report('render', { kind: 'started' });
  await report('render', out(['rendering scene 1', '::progress 0.5 half way', '::metric psnr=31.5 step=1']));
  await expect(stage(page, 'render').getByTestId('state')).toHaveText('running');
  await expect(page.getByTestId('terminal')).toContainText('rendering scene 1');
  const overall = page.locator('.run-head').getByTestId('progress-pct');
  await expect.poll(async () => parseInt((await overall.textContent()) ?? '0', 10)).toBeGreaterThan(0);
  await report('render', out(['::metric psnr=33.0 step=2', '::progress 1.0', 'rendered']));
  await report('render', { kind: 'finished', exit_code: 0 });
  await expect(runState(page)).toHaveText('waiting confirmation');
  await expect(page.getByTestId('series-psnr')).toBeVisible();
  await page.getByTestId('confirm').click();
  await expect(stage(page, 'encode').getByTestId('state')).toHaveText('running');
  await report('encode', { kind: 'started' });
  await report('encode', out(['encoding']));
  await report('encode', { kind: 'finished', exit_code: 0 });
  await expect(runState(page)).toHaveText('completed');
  await expect(page.getByTestId('terminal')).toContainText('encoding');
  await page.getByRole('link', { name: 'Dashboard' }).click();
  await expect(page.getByTestId('run').filter({ hasText: 'video' }).getByTestId('state')).toHaveText('completed');
});
