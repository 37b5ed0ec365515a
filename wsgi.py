"""WSGI entry point: `gunicorn wsgi:app`, `flask --app wsgi ...`."""

import sys

from vsync import create_app
from vsync.config import ConfigError

# Exit status of an unusable configuration. Gunicorn halts on 4 ("App failed to load") instead of
# booting workers again and again; the CLI documents it next to its own codes.
CONFIG_ERROR_EXIT = 4

try:
    app = create_app()
except ConfigError as exc:
    print(f"vsync: {exc}", file=sys.stderr)
    sys.exit(CONFIG_ERROR_EXIT)
