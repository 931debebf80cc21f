"""Event consumers of the auth service: the subscriptions it declares (queues in libs.common.topology)."""

from __future__ import annotations

from libs.common.bus import Subscription

SUBSCRIPTIONS: list[Subscription] = []
