"""`python -m services.rnaget`: run the rnaget service as its own process."""

from __future__ import annotations

from libs.common.config import from_environment
from libs.common.runner import run_standalone
from services.rnaget.app import PREFIX, create_app
from services.rnaget.settings import RnagetSettings


def main() -> None:
    settings = from_environment(RnagetSettings)
    run_standalone(PREFIX, create_app(settings), settings.common)


if __name__ == "__main__":
    main()
