"""Accept / Content-Type negotiation over the GMI media types."""

from __future__ import annotations

import pytest

from libs.common.errors import NotAcceptable, UnsupportedMediaType
from services.repository.models import ResourceType
from services.repository.negotiation import Representation, negotiate, request_format

SAMPLE = ResourceType.SAMPLE


@pytest.mark.parametrize(
    ("accept", "media", "rep"),
    [
        (None, "application/vnd.gmi.sample-v1+json", Representation.JSON),
        ("*/*", "application/vnd.gmi.sample-v1+json", Representation.JSON),
        ("application/vnd.gmi.sample-v1+xml", "application/vnd.gmi.sample-v1+xml", Representation.XML),
        ("application/json", "application/json", Representation.JSON),
        ("text/html,application/xhtml+xml", "text/html", Representation.HTML),
        (
            "application/vnd.gmi.sample-v1+json;q=0.5, application/vnd.gmi.sample-v1+xml",
            "application/vnd.gmi.sample-v1+xml",
            Representation.XML,
        ),
        ("text/*;q=0.9, application/*;q=0.1", "text/html", Representation.HTML),
        (
            "application/*;q=0.2, application/vnd.gmi.sample-v1+json;q=0",
            "application/vnd.gmi.sample-v1+xml",
            Representation.XML,
        ),
    ],
)
def test_accept_with_q_values(accept: str | None, media: str, rep: Representation) -> None:
    assert negotiate(accept, SAMPLE) == (media, rep)


@pytest.mark.parametrize("accept", ["image/png", "application/vnd.gmi.study-v1+json", "text/html;q=0"])
def test_nothing_acceptable_is_406(accept: str) -> None:
    with pytest.raises(NotAcceptable, match=r"acceptable: application/vnd\.gmi\.sample-v1"):
        negotiate(accept, SAMPLE)


def test_request_content_types() -> None:
    assert request_format("application/vnd.gmi.sample-v1+json; charset=utf-8", SAMPLE) is Representation.JSON
    assert request_format("application/vnd.gmi.sample-v1+xml", SAMPLE) is Representation.XML
    assert request_format("application/merge-patch+json", SAMPLE) is Representation.JSON
    with pytest.raises(UnsupportedMediaType, match="text/plain"):
        request_format("text/plain", SAMPLE)
    with pytest.raises(UnsupportedMediaType, match="study"):
        request_format("application/vnd.gmi.sample-v1+json", ResourceType.STUDY)


def test_the_sra_data_format_is_not_served_and_answers_are_memoised() -> None:
    with pytest.raises(NotAcceptable, match=r"acceptable: application/vnd\.gmi\.run-v1"):
        negotiate("application/vnd.ncbi.run+sra", ResourceType.RUN)
    # a client that also accepts JSON gets JSON (q-values still honoured)
    assert negotiate("application/vnd.ncbi.run+sra, application/json;q=0.5", ResourceType.RUN) == (
        "application/json",
        Representation.JSON,
    )
    negotiate.cache_clear()
    negotiate("application/xml", ResourceType.SAMPLE)
    negotiate("application/xml", ResourceType.SAMPLE)
    assert negotiate.cache_info().hits == 1
