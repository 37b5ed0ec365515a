"""What a web process holds: packages that only a rare feature needs are imported where that feature
runs, so every process of the app does not carry them (fpdf2 for invoice PDFs, about 30 MB with its
font tools; zxcvbn's password lists, 12 MB)."""

from __future__ import annotations

import json
import subprocess
import sys

from vsync import ROOT

RARE = ("fpdf", "zxcvbn")

_SERVE_ONE_REQUEST = """
import json, sys
from vsync import create_app
app = create_app({
    "VSYNC_ENV": "test", "SQLALCHEMY_DATABASE_URI": sys.argv[1], "REDIS_URL": None,
    "SECRET_KEY": "footprint-secret-key", "VSYNC_ENCRYPTION_KEYS": [sys.argv[2]],
})
status = app.test_client().get("/api/v1/health").status_code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def test_the_app_answers_a_request_without_importing_what_only_rare_features_need(tmp_path):
    from cryptography.fernet import Fernet

    result = subprocess.run(
        [sys.executable, "-c", _SERVE_ONE_REQUEST, f"sqlite:///{tmp_path / 'v.db'}", Fernet.generate_key().decode()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer["status"] in (200, 503)
    assert not {module.split(".")[0] for module in answer["modules"]} & set(RARE)
