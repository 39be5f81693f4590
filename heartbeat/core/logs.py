"""One logging setup for stages and the CLI: short lines on stderr, prefixed with the stage name."""

from __future__ import annotations

import logging
import os

logger = logging.getLogger("heartbeat")


def setup(name: str) -> logging.Logger:
    level = os.environ.get("HEARTBEAT_LOG_LEVEL", "INFO").upper()
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"{name}: %(levelname)s: %(message)s"))
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
    return logger
