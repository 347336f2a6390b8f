"""Switchboard's Python client: publish events, follow a topic across reconnects
and server restarts, and run an external run's stages from your own backend.

    from switchboard import AsyncClient, Client, Stage
"""

from .agent.connection import AgentConnection
from .agent.http_stage import HttpStage
from .agent.outbox import Outbox
from .agent.run import ExternalRun
from .agent.stage import StageHandle
from .backoff import Backoff
from .client import AsyncClient, History
from .errors import (
    AgentOffline,
    BadJson,
    BadRequest,
    Conflict,
    ConnectionFailed,
    ConnectionRefusedByPolicy,
    DeliveryUnknown,
    Forbidden,
    InvalidInput,
    InvalidTopic,
    MessageTooLarge,
    NotFound,
    PayloadTooLarge,
    RateLimited,
    RunEnded,
    ServerError,
    StageCancelled,
    StageRefused,
    SwitchboardError,
    TooManySubscriptions,
    Unauthorized,
    UnknownType,
)
from .models import Event, Reset, Stage, StageKey
from .subscription import Subscription
from .sync import Client

__version__ = "0.1.0"

__all__ = [
    "AgentConnection",
    "AgentOffline",
    "AsyncClient",
    "Backoff",
    "BadJson",
    "BadRequest",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "ConnectionRefusedByPolicy",
    "DeliveryUnknown",
    "Event",
    "ExternalRun",
    "Forbidden",
    "History",
    "HttpStage",
    "InvalidInput",
    "InvalidTopic",
    "MessageTooLarge",
    "NotFound",
    "Outbox",
    "PayloadTooLarge",
    "RateLimited",
    "Reset",
    "RunEnded",
    "ServerError",
    "Stage",
    "StageCancelled",
    "StageHandle",
    "StageKey",
    "StageRefused",
    "Subscription",
    "SwitchboardError",
    "TooManySubscriptions",
    "Unauthorized",
    "UnknownType",
]
