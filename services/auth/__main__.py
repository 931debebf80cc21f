"""`python -m services.auth`: run the auth service as its own process."""

from __future__ import annotations

from libs.common.config import from_environment
from libs.common.runner import run_standalone
from services.auth.app import PREFIX, create_app
from services.auth.settings import AuthSettings


def main() -> None:
    settings = from_environment(AuthSettings)
    run_standalone(PREFIX, create_app(settings), settings.common)


if __name__ == "__main__":
    main()
