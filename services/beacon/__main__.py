"""`python -m services.beacon`: run the beacon service as its own process."""

from __future__ import annotations

from libs.common.config import from_environment
from libs.common.runner import run_standalone
from services.beacon.app import PREFIX, create_app
from services.beacon.settings import BeaconSettings


def main() -> None:
    settings = from_environment(BeaconSettings)
    run_standalone(PREFIX, create_app(settings), settings.common)


if __name__ == "__main__":
    main()
