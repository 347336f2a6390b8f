#!/usr/bin/env python3
"""A training script that is its own Switchboard run.

It creates an external run (stages train -> export) executed by this process, trains a
small logistic regression on synthetic data, and reports per epoch: progress, the
loss and accuracy as metrics, and a log line. The run shows live on the dashboard
(and to any client of `workflow:{id}`); Pause and Cancel there reach the loop at its
next checkpoint. The trained weights are uploaded as an `export` artifact.

    SWITCHBOARD_URL=http://127.0.0.1:3000 SWITCHBOARD_TOKEN=... python3 examples/train.py --epochs 8

The token: `switchboard token create --sub trainer --run --agent --sub-topics 'workflow:*'`
(its `sub` is the executor's name, SWITCHBOARD_EXECUTOR, default `trainer`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time

from switchboard import Client, Stage


def synthetic_data(n: int, rng: random.Random) -> list:
    """Points in the plane, labelled by which side of a line they fall (with noise)."""
    points = []
    for _ in range(n):
        x, y = rng.uniform(-1, 1), rng.uniform(-1, 1)
        label = 1 if x + 0.5 * y + rng.gauss(0, 0.2) > 0 else 0
        points.append((x, y, label))
    return points


def epoch(weights: list, data: list, lr: float) -> tuple:
    """One pass of SGD; the mean log loss and the accuracy after it."""
    for x, y, label in data:
        p = 1 / (1 + math.exp(-(weights[0] * x + weights[1] * y + weights[2])))
        g = p - label
        weights[0] -= lr * g * x
        weights[1] -= lr * g * y
        weights[2] -= lr * g
    loss = correct = 0.0
    for x, y, label in data:
        p = 1 / (1 + math.exp(-(weights[0] * x + weights[1] * y + weights[2])))
        p = min(max(p, 1e-9), 1 - 1e-9)
        loss -= label * math.log(p) + (1 - label) * math.log(1 - p)
        correct += (p > 0.5) == bool(label)
    return loss / len(data), correct / len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--run-id", default=f"train-{int(time.time())}", help="the run's id (new each time)")
    parser.add_argument("--epoch-s", type=float, default=0.5, help="extra seconds per epoch, to watch it")
    args = parser.parse_args()

    url = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:3000")
    executor = os.environ.get("SWITCHBOARD_EXECUTOR", "trainer")
    rng = random.Random(7)
    data = synthetic_data(400, rng)
    weights = [0.0, 0.0, 0.0]

    with Client(url, token=os.environ["SWITCHBOARD_TOKEN"]) as sb:
        stages = [Stage("train"), Stage("export")]
        with sb.external_run(args.run_id, name="logistic-regression", executor=executor, stages=stages) as run:
            print(f"run {run.id}: {url}/workflows/{run.id}")
            with run.stage("train") as st:
                for n in range(1, args.epochs + 1):
                    st.checkpoint()  # waits while paused; raises StageCancelled once cancelled
                    loss, acc = epoch(weights, data, lr=0.01)
                    time.sleep(args.epoch_s)
                    st.metrics({"loss": round(loss, 4), "acc": round(acc, 4)}, step=n)
                    st.progress(n / args.epochs, f"epoch {n}/{args.epochs}")
                    st.log(f"epoch {n}: loss={loss:.4f} acc={acc:.3f}")
            with run.stage("export") as st:
                model = json.dumps({"weights": weights, "epochs": args.epochs}).encode()
                st.artifact("model.json", data=model, kind="export")
                st.notice(f"exported model.json ({len(model)} bytes)")
        print(f"run {run.id}: {sb.get_run(run.id)['state']}")


if __name__ == "__main__":
    main()
