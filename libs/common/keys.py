"""Typed application and request keys shared by every service (services declare their own in `keys.py`)."""

from __future__ import annotations

from typing import Any

import aiohttp
from aiohttp import web
from pymongo.asynchronous.database import AsyncDatabase

from libs.common.auth import BasicVerifier, Principal, RevocationList, TokenVerifier
from libs.common.bus import Bus, Subscription
from libs.common.config import CommonSettings
from libs.common.filestore import LocalFileStore
from libs.common.outbox import Inbox, Outbox

service_name = web.AppKey("service_name", str)
common_settings = web.AppKey("common_settings", CommonSettings)
mongo_db = web.AppKey("mongo_db", AsyncDatabase[dict[str, Any]])
bus = web.AppKey("bus", Bus)
outbox = web.AppKey("outbox", Outbox)
inbox = web.AppKey("inbox", Inbox)
files = web.AppKey("files", LocalFileStore)
http_client = web.AppKey("http_client", aiohttp.ClientSession)
verifier = web.AppKey("verifier", TokenVerifier)
revocations = web.AppKey("revocations", RevocationList)
basic_verifier: web.AppKey[BasicVerifier] = web.AppKey("basic_verifier")
subscriptions = web.AppKey("subscriptions", list[Subscription])
shutting_down = web.AppKey("shutting_down", dict[str, bool])

principal = web.RequestKey("principal", Principal)
request_id = web.RequestKey("request_id", str)
