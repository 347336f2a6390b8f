// Starts and stops the real `switchboard` binary for a spec, on a port of its own.
import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';

const root = path.resolve(__dirname, '../../..');

export const serverBinary = process.env.SWITCHBOARD_BIN ?? path.join(root, 'target/debug/switchboard');
export const siteRoot = process.env.SWITCHBOARD_SITE_ROOT ?? path.join(root, 'target/site');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

export class Server {
  private child?: ChildProcess;
  readonly dataDir: string;
  log = '';
  /** An operator's access token, minted by `switchboard token create` from the secret
   *  the server made in its data folder (auth is on, as shipped). */
  token = '';
  private usedLinks = new Set<string>();

  constructor(
    readonly port: number,
    readonly env: Record<string, string> = {},
    dataDir?: string,
  ) {
    this.dataDir = dataDir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'switchboard-e2e-'));
  }

  /** Starts a server on a free port; `env` adds SWITCHBOARD_* settings. */
  static async start(env: Record<string, string> = {}): Promise<Server> {
    const server = new Server(await freePort(), env);
    await server.start();
    return server;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    // LEPTOS_* would make the server take cargo-leptos's settings over its own
    const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LEPTOS_')));
    this.child = spawn(serverBinary, ['--port', String(this.port), '--data-dir', this.dataDir], {
      env: {
        ...inherited,
        SWITCHBOARD_SITE_ROOT: siteRoot,
        SWITCHBOARD_PIPELINES_DIR: path.join(root, 'pipelines'),
        SWITCHBOARD_LOG: 'info',
        // the specs start inline pipelines (a server setting, off as shipped)
        SWITCHBOARD_INLINE_PIPELINES: 'on',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout?.on('data', (d) => (this.log += d));
    this.child.stderr?.on('data', (d) => (this.log += d));
    await this.waitUntilHealthy();
    if (!this.token) this.token = this.mintToken(['--operator']);
  }

  /** `switchboard token create` against this server's data folder. */
  mintToken(flags: string[], sub = 'e2e'): string {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LEPTOS_')));
    const out = spawnSync(serverBinary, ['token', 'create', '--sub', sub, '--ttl', '2h', '--data-dir', this.dataDir, ...flags], {
      env: { ...env, ...this.env },
      encoding: 'utf8',
    });
    if (out.status !== 0) throw new Error(`token create failed: ${out.stderr}`);
    return out.stdout.trim();
  }

  /** A sign-in link the server printed that has not been used yet (each works once;
   *  the server prints the next when one is used). */
  async nextSignInLink(timeout = 10_000): Promise<string> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const links = [...this.log.matchAll(/(?:sign a browser in with|the next sign-in link is) (\S+)/g)].map((m) => m[1]);
      const fresh = links.find((l) => !this.usedLinks.has(l));
      if (fresh) {
        this.usedLinks.add(fresh);
        return fresh;
      }
      if (Date.now() > deadline) throw new Error(`no unused sign-in link in the log:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  private async waitUntilHealthy(): Promise<void> {
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      if (this.child?.exitCode !== null && this.child?.exitCode !== undefined) {
        throw new Error(`server exited with ${this.child.exitCode}:\n${this.log}`);
      }
      try {
        const res = await fetch(`${this.url}/healthz`);
        if (res.ok) return;
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`server did not become healthy:\n${this.log}`);
  }

  /** The first match of `pattern` in what the server has logged, waiting for it. */
  async waitForLog(pattern: RegExp, timeout = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeout;
    for (;;) {
      const m = this.log.match(pattern);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`the server never logged ${pattern}:\n${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stops the process with `signal` and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill(signal);
    await exited;
    this.child = undefined;
  }
}
