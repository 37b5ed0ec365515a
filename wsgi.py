"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""
import sys

from vsync import create_app
from vsync.config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    sys.exit(f"vsync: {exc}")
