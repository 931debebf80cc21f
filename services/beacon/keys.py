"""Typed app keys of the beacon service (shared ones are in libs.common.keys)."""

from __future__ import annotations

from aiohttp import web

from libs.common.passports import PassportVerifier

from .network import Network
from .service import BeaconIdentity, Catalog, QueryBudget
from .settings import BeaconSettings
from .store import DatasetStore

settings = web.AppKey("beacon_settings", BeaconSettings)
catalog = web.AppKey("beacon_catalog", Catalog)
dataset_store = web.AppKey("dataset_store", DatasetStore)
identity = web.AppKey("beacon_identity", BeaconIdentity)
passports = web.AppKey("passport_verifier", PassportVerifier)
network = web.AppKey("beacon_network", Network)
query_budget = web.AppKey("query_budget", QueryBudget)
