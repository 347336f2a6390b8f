"""A FastAPI backend that reports its work to Switchboard with the Python client.

- ``POST /generate``: an AI-style job; publishes ``ai_start``, ``ai_progress`` and
  ``ai_complete`` on ``session:{session_id}`` over a few seconds.
- ``POST /projects/{id}``: an external run (stages script -> render -> encode, a
  confirmation gate after script) that this backend executes itself, reporting
  progress, metrics, log lines and an artifact, and honouring pause and cancel.
- ``POST /token``: the token a browser uses to watch (and confirm) those jobs.

Configuration (environment): SWITCHBOARD_URL, SWITCHBOARD_TOKEN, SWITCHBOARD_EXECUTOR,
SWITCHBOARD_BROWSER_TOKEN, DEMO_STEP_S (see README.md).
"""

from __future__ import annotations

import asyncio
import logging
import os
import struct
import zlib
from contextlib import asynccontextmanager
from typing import Any, Coroutine, Set

from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, Field
from switchboard import AsyncClient, InvalidInput, Stage, SwitchboardError

SWITCHBOARD_URL = os.environ.get("SWITCHBOARD_URL", "http://127.0.0.1:3000")
SWITCHBOARD_TOKEN = os.environ.get("SWITCHBOARD_TOKEN", "")
EXECUTOR = os.environ.get("SWITCHBOARD_EXECUTOR", "backend")
BROWSER_TOKEN = os.environ.get("SWITCHBOARD_BROWSER_TOKEN", "")
STEP_S = float(os.environ.get("DEMO_STEP_S", "0.5"))  # the pace of the demo jobs

PIPELINE = {
    "name": "video",
    "executor": EXECUTOR,
    "stages": [s.as_dict() for s in (Stage("script", confirm=True), Stage("render"), Stage("encode"))],
}
SCENES = ["INT. CONTROL ROOM - NIGHT", "A wall of progress bars.", "One of them stalls.", "FADE OUT."]
FRAMES = 12

log = logging.getLogger("uvicorn.error")  # printed with uvicorn's own lines
jobs: Set[asyncio.Task] = set()


def spawn(coro: Coroutine[Any, Any, None]) -> None:
    """Runs a job in the background, past the request that started it."""
    task = asyncio.create_task(coro)
    jobs.add(task)
    task.add_done_callback(jobs.discard)


@asynccontextmanager
async def lifespan(app: FastAPI):
    if not SWITCHBOARD_TOKEN:
        raise RuntimeError("set SWITCHBOARD_TOKEN (switchboard token create --sub backend --agent --run ...)")
    async with AsyncClient(SWITCHBOARD_URL, token=SWITCHBOARD_TOKEN) as sb:
        # One executor connection for the app's life: the engine sends it each stage
        # when due, and every pause, resume, cancel and chat of the runs it executes;
        # concurrency: the stages it runs at once, over all its runs.
        log.info("connecting to Switchboard at %s as executor %r", SWITCHBOARD_URL, EXECUTOR)
        try:
            await asyncio.wait_for(sb.agent(EXECUTOR, concurrency=8), 30)
        except asyncio.TimeoutError:
            raise RuntimeError(f"Switchboard did not answer at {SWITCHBOARD_URL} within 30 s") from None
        app.state.sb = sb
        await take_up()
        yield
        for task in list(jobs):
            task.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)


app = FastAPI(title="switchboard example backend", lifespan=lifespan)


def sb() -> AsyncClient:
    return app.state.sb


def fail(e: SwitchboardError) -> HTTPException:
    """A Switchboard refusal as this API's answer (409 for a taken id, 400, 403, ...)."""
    status = 400 if isinstance(e, InvalidInput) else e.status if e.status and 400 <= e.status < 500 else 502
    return HTTPException(status, f"switchboard: {e.code}: {e.message}")


# -- (a) an AI-style job on session:{id} -------------------------------------------------


class GenerateBody(BaseModel):
    session_id: str = Field(pattern=r"^[a-z0-9_.-]{1,64}$")
    prompt: str = Field(default="a haiku about switchboards", max_length=2000)


@app.post("/generate", status_code=202)
async def generate(body: GenerateBody) -> dict:
    topic = f"session:{body.session_id}"
    spawn(generate_job(topic, body.prompt))
    return {"topic": topic}


async def generate_job(topic: str, prompt: str) -> None:
    steps = ["reading the prompt", "choosing words", "drafting", "counting syllables", "polishing"]
    try:
        await sb().publish(topic, "ai_start", {"prompt": prompt, "steps": len(steps)})
        for i, message in enumerate(steps, 1):
            await asyncio.sleep(STEP_S)
            await sb().publish(topic, "ai_progress", {"progress": i / len(steps), "message": message})
        result = f"Lights on the switchboard,\nevery job a steady glow:\n{prompt[:40]} is done."
        await sb().publish(topic, "ai_complete", {"result": result})
    except SwitchboardError:
        log.exception("generate on %s failed", topic)


# -- (b) an external run executed here --------------------------------------------------


@app.post("/projects/{project_id}", status_code=201)
async def create_project(project_id: str) -> dict:
    try:
        run = await sb().create_run(PIPELINE, project_id)
    except SwitchboardError as e:
        raise fail(e) from e
    spawn(produce(run["id"]))
    return {"id": run["id"], "topic": f"workflow:{run['id']}", "state": run["state"]}


async def take_up() -> None:
    """Runs left by an earlier process of this app, queued or waiting at the gate:
    their next stage will be given to this process, so it must be here to run it.
    (A stage that was running when that process stopped has failed already: "the
    executor was stopped", or `agent lost` after a kill.)"""
    for state in ("pending", "waiting_confirmation"):
        page = await sb().list_runs(state=state, pipeline=PIPELINE["name"], limit=500)
        for run in page["workflows"]:
            if all(s.get("agent") in (None, EXECUTOR) for s in run["stages"]):
                log.info("taking up run %s (%s)", run["id"], state)
                spawn(produce(run["id"], after_gate=state == "waiting_confirmation"))


async def produce(run_id: str, after_gate: bool = False) -> None:
    try:
        async with sb().external_run(run_id, executor=EXECUTOR, create=False) as run:
            if not after_gate:
                async with run.stage("script") as st:
                    for i, scene in enumerate(SCENES, 1):
                        await asyncio.sleep(STEP_S)  # the work
                        await st.checkpoint()  # waits while paused; raises once cancelled
                        await st.log(scene)
                        await st.progress(i / len(SCENES), f"scene {i}/{len(SCENES)}")
            # script has `confirm`: the run waits in waiting_confirmation for a person
            await run.wait_confirmed()
            async with run.stage("render") as st:
                for frame in range(1, FRAMES + 1):
                    await asyncio.sleep(STEP_S)
                    await st.checkpoint()
                    await st.log(f"rendered frame {frame}/{FRAMES}")
                    await st.metrics({"psnr": 30 + frame * 0.5, "fps": 24 + frame % 3}, step=frame)
                    await st.progress(frame / FRAMES, f"frame {frame}/{FRAMES}")
            async with run.stage("encode") as st:
                await st.notice("encoding h264")
                for pct in (0.25, 0.5, 0.75, 1.0):
                    await asyncio.sleep(STEP_S)
                    await st.checkpoint()
                    await st.progress(pct, f"{int(pct * 100)}% encoded")
                await st.artifact("poster.png", data=poster_png(), kind="image")
                await st.log(f"wrote poster.png for {run_id}")
    except SwitchboardError:
        log.exception("run %s failed", run_id)


def poster_png(width: int = 160, height: int = 90) -> bytes:
    """A small gradient PNG, made with zlib alone."""
    rows = b"".join(
        b"\0" + bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 160)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


# -- (c) the browser's token ----------------------------------------------------------------


@app.post("/token")
async def token() -> dict:
    if not BROWSER_TOKEN:
        raise HTTPException(503, "SWITCHBOARD_BROWSER_TOKEN is not set")
    return {"token": BROWSER_TOKEN}
