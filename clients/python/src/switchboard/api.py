"""Every HTTP endpoint the client speaks, as a ``Call`` built (and checked) once, so
the sync and async clients send exactly the same thing."""

from __future__ import annotations

from typing import Any, Dict, Iterable, Optional, Sequence, Union
from urllib.parse import quote

from . import validate
from .errors import InvalidInput
from .http import Call, Content
from .models import Stage

#: The server's default `--max-pipeline-bytes`.
DEFAULT_MAX_PIPELINE_BYTES = 256 * 1024
CONTROL_ACTIONS = ("pause", "resume", "cancel", "confirm")


def _json(value: Any, what: str, limit: int) -> bytes:
    return validate.size(validate.to_json(value, what), limit, what).encode()


def publish(topic: str, event: str, data: Any, max_bytes: int) -> Call:
    validate.publishable_topic(topic)
    validate.event_name(event)
    body = _json({"topic": topic, "event": event, "data": data}, f"publish to {topic!r}", max_bytes)
    return Call("POST", "/api/v1/publish", f"publish to {topic!r}", content=body, safe_500=True)


def history(topic: str, since: int = 0, limit: Optional[int] = None) -> Call:
    validate.topic(topic)
    if isinstance(since, bool) or not isinstance(since, int) or since < 0:
        raise InvalidInput(f"since must be a seq (an int >= 0), not {since!r}", since)
    params: Dict[str, Any] = {"since": since}
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise InvalidInput(f"limit must be an int >= 1, not {limit!r}", limit)
        params["limit"] = limit
    return Call("GET", f"/api/v1/topics/{topic}/history", f"history of {topic!r}", params=params, idempotent=True)


def external_pipeline(name: str, executor: str, stages: Sequence[Union[Stage, str]]) -> Dict[str, Any]:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"pipeline name {name!r} must be a non-empty string", name)
    validate.agent_name(executor, "executor")
    defs = [Stage(s) if isinstance(s, str) else s for s in stages]
    if not defs:
        raise InvalidInput("an external run needs at least one stage", stages)
    seen = set()
    for s in defs:
        validate.stage_id(s.id)
        if s.id in seen:
            raise InvalidInput(f"duplicate stage id {s.id!r}", s.id)
        seen.add(s.id)
    return {"name": name, "executor": executor, "stages": [s.as_dict() for s in defs]}


def create_run(pipeline: Union[str, Dict[str, Any]], run_id: Optional[str], max_bytes: int) -> Call:
    body: Dict[str, Any] = {"pipeline": pipeline}
    if run_id is not None:
        body["id"] = validate.run_id(run_id)
    what = f"start run {run_id!r}" if run_id else "start a run"
    return Call("POST", "/api/v1/workflows", what, content=_json(body, what, max_bytes))


def get_run(run_id: str) -> Call:
    validate.run_id(run_id)
    return Call("GET", f"/api/v1/workflows/{run_id}", f"get run {run_id!r}", idempotent=True)


def list_runs(params: Optional[Dict[str, Any]] = None) -> Call:
    return Call("GET", "/api/v1/workflows", "list runs", params=params, idempotent=True)


def control(run_id: str, action: str) -> Call:
    validate.run_id(run_id)
    if action not in CONTROL_ACTIONS:
        raise InvalidInput(f"action {action!r} is not one of {', '.join(CONTROL_ACTIONS)}", action)
    return Call("POST", f"/api/v1/workflows/{run_id}/{action}", f"{action} run {run_id!r}")


def restart_stage(run_id: str, stage: str) -> Call:
    validate.run_id(run_id)
    validate.stage_id(stage)
    return Call("POST", f"/api/v1/workflows/{run_id}/stages/{stage}/restart", f"restart {stage!r} of {run_id!r}")


def chat(run_id: str, text: str, max_bytes: int) -> Call:
    validate.run_id(run_id)
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"chat text {text!r} must be a non-empty string", text)
    what = f"chat on run {run_id!r}"
    return Call("POST", f"/api/v1/workflows/{run_id}/chat", what, content=_json({"text": text}, what, max_bytes))


def reports(run_id: str, batch: Iterable[Dict[str, Any]], max_bytes: int) -> Call:
    validate.run_id(run_id)
    what = f"reports of run {run_id!r}"
    body = _json({"reports": list(batch)}, what, max_bytes)
    return Call("POST", f"/api/v1/workflows/{run_id}/reports", what, content=body, idempotent=True)


def upload(run_id: str, name: str, content: Content, content_type: Optional[str]) -> Call:
    validate.run_id(run_id)
    validate.artifact_name(name)
    path = f"/api/v1/workflows/{run_id}/artifacts/{quote(name, safe='/')}"
    what = f"upload {name!r} to run {run_id!r}"
    return Call("PUT", path, what, content=content, content_type=content_type, idempotent=True)


def download(run_id: str, name: str) -> Call:
    validate.run_id(run_id)
    validate.artifact_name(name)
    path = f"/api/v1/workflows/{run_id}/artifacts/{quote(name, safe='/')}"
    return Call("GET", path, f"download {name!r} of run {run_id!r}", idempotent=True, raw=True)
