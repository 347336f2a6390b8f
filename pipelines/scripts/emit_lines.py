"""Prints RATE lines a second for SECONDS seconds, `line N t=MILLIS` each, paced in
1 ms steps: a firehose stage for measuring the terminal view (docs/BENCHMARKS.md)."""

import sys
import time


def main():
    rate = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 10
    total = int(rate * seconds)
    out = sys.stdout
    start = time.monotonic()
    n = 0
    while n < total:
        due = min(total, int((time.monotonic() - start) * rate))
        while n < due:
            out.write(f"line {n} t={time.time() * 1000:.0f} \x1b[3{n % 7 + 1}m{'x' * 20}\x1b[0m\n")
            n += 1
        out.flush()
        time.sleep(0.001)


if __name__ == "__main__":
    main()
