// @perf: a measurement, not a test (docs/BENCHMARKS.md): a stage prints 10,000 lines/s
// for 10 s while the page shows it; how long the page's frames take, and how many line
// elements the terminal holds. Run with `PERF=1 npx playwright test perf`.
import { expect, test } from '@playwright/test';
import * as fs from 'node:fs';
import { Server } from './support/server';
import { startRun } from './support/api';
import { openConnected, terminalCount } from './support/page';

test('@perf 10,000 lines/s for 10 s: frame gaps and DOM size', async ({ page }) => {
  test.setTimeout(180_000);
  const server = await Server.start();
  try {
    const id = await startRun(server.url, {
      name: 'firehose',
      stages: [{ id: 'emit', run: 'sleep 2; python3 "$SWITCHBOARD_PIPELINES/scripts/emit_lines.py" 10000 10' }],
    });
    await openConnected(page, `${server.url}/workflows/${id}`);
    await page.evaluate(() => {
      const w = window as any;
      w.__perf = { gaps: [] as number[], maxLines: 0, last: performance.now(), stop: false };
      const tick = (t: number) => {
        const p = w.__perf;
        p.gaps.push(t - p.last);
        p.last = t;
        p.maxLines = Math.max(p.maxLines, document.querySelectorAll('.term-line').length);
        if (!p.stop) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    await expect.poll(() => terminalCount(page), { timeout: 120_000, intervals: [500] }).toBe(100_000);
    const result = await page.evaluate(() => {
      const p = (window as any).__perf;
      p.stop = true;
      const gaps = (p.gaps as number[]).slice(1).sort((a, b) => a - b);
      const at = (q: number) => gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))];
      return { frames: gaps.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: gaps[gaps.length - 1], maxLines: p.maxLines };
    });
    console.log(`perf: ${JSON.stringify(result)}`);
    fs.mkdirSync('test-results', { recursive: true });
    fs.writeFileSync('test-results/perf.json', JSON.stringify(result, null, 2));
  } finally {
    await server.stop();
  }
});
