// The server's HTTP API, for setting up a scene and for checking what a page shows
// against what the server holds.
import { expect } from '@playwright/test';

export type Json = any;

/** Where the API is, and the token to use (an operator's, for setting up scenes). */
export interface Api {
  url: string;
  token: string;
}

function auth(api: Api): Record<string, string> {
  return { authorization: `Bearer ${api.token}` };
}

export async function startRun(api: Api, pipeline: Json): Promise<string> {
  const res = await fetch(`${api.url}/api/v1/workflows`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...auth(api) },
    body: JSON.stringify({ pipeline }),
  });
  expect(res.status, await res.clone().text()).toBe(201);
  return (await res.json()).id;
}

export async function snapshot(api: Api, id: string): Promise<Json> {
  return (await fetch(`${api.url}/api/v1/workflows/${id}`, { headers: auth(api) })).json();
}

/** Waits until the run's state (from its snapshot) is `state`. */
export async function waitForState(api: Api, id: string, state: string, timeout = 30_000): Promise<Json> {
  let last: Json;
  await expect
    .poll(async () => {
      last = await snapshot(api, id);
      return last.state;
    }, { timeout })
    .toBe(state);
  return last;
}

/** Every event of a topic's durable log, in seq order. */
export async function history(api: Api, topic: string): Promise<Json[]> {
  const events: Json[] = [];
  let since = 0;
  for (;;) {
    const res = await fetch(`${api.url}/api/v1/topics/${topic}/history?since=${since}&limit=1000`, { headers: auth(api) });
    const page = await res.json();
    if (page.events.length === 0) return events;
    events.push(...page.events);
    since = page.events[page.events.length - 1].seq;
  }
}

/** The terminal lines of a run as its durable log holds them (ANSI removed). */
export async function loggedLines(api: Api, id: string): Promise<string[]> {
  const events = await history(api, `workflow:${id}`);
  const text = events
    .filter((e) => e.event === 'terminal_output')
    .map((e) => e.data.output as string)
    .join('');
  // eslint-disable-next-line no-control-regex
  return text.split('\n').slice(0, -1).map((l) => l.replace(/\r$/, '').replace(/\x1b\[[0-9;:]*m/g, ''));
}
