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
    const id = await startRun(server, {
      name: 'firehose',
      stages: [{ id: 'emit', run: 'sleep 6; python3 "$SWITCHBOARD_PIPELINES/scripts/emit_lines.py" 10000 10' }],
    });
    await openConnected(page, server, `/workflows/${id}`);
    // every frame: its gap, whether lines have started to arrive, the line elements;
    // long tasks (over 50 ms) from the browser's own observer
    await page.evaluate(() => {
      const w = window as any;
      w.__perf = { frames: [] as [number, boolean][], maxLines: 0, last: performance.now(), stop: false, long: [] as number[] };
      new PerformanceObserver((list) => list.getEntries().forEach((e) => w.__perf.long.push(e.duration))).observe({ entryTypes: ['longtask'] });
      const tick = (t: number) => {
        const p = w.__perf;
        const lines = document.querySelectorAll('.term-line').length;
        p.frames.push([t - p.last, lines > 0]);
        p.last = t;
        p.maxLines = Math.max(p.maxLines, lines);
        if (!p.stop) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
    await expect.poll(() => terminalCount(page), { timeout: 120_000, intervals: [500] }).toBe(100_000);
    const result = await page.evaluate(() => {
      const p = (window as any).__perf;
      p.stop = true;
      const stats = (gaps: number[]) => {
        gaps.sort((a, b) => a - b);
        const at = (q: number) => Math.round(gaps[Math.min(gaps.length - 1, Math.floor(q * gaps.length))] * 10) / 10;
        return { frames: gaps.length, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: at(1) };
      };
      const frames = (p.frames as [number, boolean][]).slice(1);
      return {
        idle: stats(frames.filter((f) => !f[1]).map((f) => f[0])),
        flood: stats(frames.filter((f) => f[1]).map((f) => f[0])),
        maxLineElements: p.maxLines,
        longTasks: (p.long as number[]).length,
        longestTaskMs: Math.round(Math.max(0, ...(p.long as number[]))),
      };
    });
    console.log(`perf: ${JSON.stringify(result)}`);
    fs.mkdirSync('test-results', { recursive: true });
    fs.writeFileSync('test-results/perf.json', JSON.stringify(result, null, 2));
  } finally {
    await server.stop();
  }
});
