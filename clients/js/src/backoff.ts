// Reconnect delays: exponential backoff with full jitter (first retry about 1 s,
// capped at 30 s, no attempt limit), as the dashboard's client (backoff.rs). Full
// jitter spreads a crowd of clients that lost the same server; the first delay is
// kept in [base/2, base) so a server that just restarted is not hit by all at once.
export class Backoff {
  attempt = 0;
  constructor(
    readonly base = 1000,
    readonly cap = 30000,
  ) {}

  /** The next delay in ms, for a uniform random number in [0, 1); counts the attempt. */
  next(random = Math.random()): number {
    const ceiling = Math.min(this.cap, this.base * 2 ** Math.min(this.attempt, 31));
    const r = Math.min(Math.max(random, 0), 1);
    return ceiling * (this.attempt++ ? r : 0.5 + r / 2);
  }

  reset(): void {
    this.attempt = 0;
  }
}
