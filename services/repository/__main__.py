"""`python -m services.repository`: run the repository service as its own process."""

from __future__ import annotations

from libs.common.config import from_environment
from libs.common.runner import run_standalone
from services.repository.app import PREFIX, create_app
from services.repository.settings import RepositorySettings


def main() -> None:
    settings = from_environment(RepositorySettings)
    run_standalone(PREFIX, create_app(settings), settings.common)


if __name__ == "__main__":
    main()
