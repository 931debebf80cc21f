"""`python -m services.ingest`: run the ingest service as its own process."""

from __future__ import annotations

from libs.common.config import from_environment
from libs.common.runner import run_standalone
from services.ingest.app import PREFIX, create_app
from services.ingest.settings import IngestSettings


def main() -> None:
    settings = from_environment(IngestSettings)
    run_standalone(PREFIX, create_app(settings), settings.common)


if __name__ == "__main__":
    main()
