// Starts the examples for a spec: the FastAPI backend (examples/fastapi-app, uvicorn in
// its .venv) and the React page (examples/react-app, built by Vite into a folder of the
// spec's own and served by `vite preview`, whose proxy forwards /api and /ws to
// Switchboard and /backend to the backend). scripts/test.sh installs both first:
//   examples/fastapi-app/run.sh --install
//   (cd examples/react-app && npm ci)      # after clients/js is built
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { freePort, Server } from './server';

const root = path.resolve(__dirname, '../../..');
export const fastapiApp = path.join(root, 'examples/fastapi-app');
export const reactApp = path.join(root, 'examples/react-app');
const python = process.env.EXAMPLES_PYTHON ?? path.join(fastapiApp, '.venv/bin/python');
const vite = path.join(reactApp, 'node_modules/vite/bin/vite.js');

const running = new Set<ChildProcess>();
// a worker that exits without its afterAll (a crash) still leaves no process behind
process.once('exit', () => running.forEach((c) => c.pid && signalGroup(c, 'SIGKILL')));

function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    process.kill(-child.pid!, signal); // the child and whatever it started
  } catch {
    // gone already
  }
}

/** A process started for a spec, in a process group of its own, its output kept. */
export class Child {
  log = '';
  private exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly url: string,
    private child: ChildProcess,
  ) {
    running.add(child);
    child.stdout?.on('data', (d) => (this.log += d));
    child.stderr?.on('data', (d) => (this.log += d));
    this.exited = new Promise((r) => child.once('exit', () => r()));
    this.exited.then(() => running.delete(child));
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Until `GET url` answers 2xx; fails as soon as the process exits. */
  async waitUntilAnswering(url = this.url, timeout = 60_000): Promise<void> {
    const deadline = Date.now() + timeout;
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`${this.name} exited (${this.child.exitCode ?? this.child.signalCode}):\n${this.log}`);
      try {
        if ((await fetch(url)).ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name} did not answer ${url} within ${timeout / 1000} s:\n${this.log}`);
  }

  /** SIGTERM (the backend then shuts down cleanly), SIGKILL after `grace` ms. */
  async stop(grace = 10_000): Promise<void> {
    if (!this.alive) return;
    signalGroup(this.child, 'SIGTERM');
    const timer = setTimeout(() => signalGroup(this.child, 'SIGKILL'), grace);
    await this.exited;
    clearTimeout(timer);
  }
}

function start(name: string, url: string, cmd: string, args: string[], cwd: string, env: Record<string, string>): Child {
  // LEPTOS_* and the test's own SWITCHBOARD_* settings are not the examples' business
  const inherited = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('LEPTOS_') && !k.startsWith('SWITCHBOARD_') && !k.startsWith('VITE_')),
  ) as Record<string, string>;
  const child = spawn(cmd, args, { cwd, env: { ...inherited, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  return new Child(name, url, child);
}

/** The FastAPI example on a free port, executing runs as `backend` (its token's sub)
 *  and handing `browserToken` to pages; resolves once it answers (its executor
 *  connection to Switchboard is open by then: uvicorn serves after the lifespan start). */
export async function startBackend(server: Server, browserToken: string, env: Record<string, string> = {}): Promise<Child> {
  if (!fs.existsSync(python)) {
    throw new Error(`no Python for the FastAPI example at ${python}: run examples/fastapi-app/run.sh --install (or set EXAMPLES_PYTHON)`);
  }
  const backendToken = server.mintToken(['--run', '--agent', '--pub-topics', 'session:*', '--sub-topics', '*'], 'backend');
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = start('the FastAPI example', url, python, ['-m', 'uvicorn', 'app:app', '--host', '127.0.0.1', '--port', String(port)], fastapiApp, {
    SWITCHBOARD_URL: server.url,
    SWITCHBOARD_TOKEN: backendToken,
    SWITCHBOARD_BROWSER_TOKEN: browserToken,
    PYTHONUNBUFFERED: '1',
    ...env,
  });
  try {
    await child.waitUntilAnswering(`${url}/openapi.json`);
  } catch (e) {
    await child.stop();
    throw e;
  }
  return child;
}

/** Builds the React example into a new temporary folder (the current source, against
 *  the current clients/js/dist); its path. */
export function buildPage(): string {
  if (!fs.existsSync(vite)) {
    throw new Error(`examples/react-app has no node_modules: build clients/js, then (cd examples/react-app && npm ci)`);
  }
  const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-react-example-'));
  const out = spawnSync(process.execPath, [vite, 'build', '--outDir', outDir, '--emptyOutDir', '--logLevel', 'warn'], {
    cwd: reactApp,
    encoding: 'utf8',
  });
  if (out.status !== 0) throw new Error(`vite build of examples/react-app failed:\n${out.stdout}${out.stderr}`);
  return outDir;
}

/** `vite preview` of a build on `port`, its proxy in front of Switchboard and the
 *  backend (vite.config.ts reads both addresses from the environment at start). */
export async function startPage(outDir: string, port: number, switchboardUrl: string, backendUrl: string): Promise<Child> {
  const url = `http://127.0.0.1:${port}`;
  const child = start(
    'vite preview of the React example',
    url,
    process.execPath,
    [vite, 'preview', '--outDir', outDir, '--port', String(port), '--strictPort'],
    reactApp,
    { VITE_SWITCHBOARD_URL: switchboardUrl, VITE_BACKEND_URL: backendUrl },
  );
  try {
    await child.waitUntilAnswering();
  } catch (e) {
    await child.stop();
    throw e;
  }
  return child;
}
