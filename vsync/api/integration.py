"""GET and PUT /api/v1/orgs/{org}/integration, POST /api/v1/orgs/{org}/integration/test: the org's
MightyCall account.

Credentials are write-only: an answer says whether they are set, never what they are. An org admin
may point the integration only at MightyCall's own hosts (`vsync.services.integrations.validate_base_url`);
platform principals may set any (a relay, a simulator). The services are those of the CLI's
`add-integration` and `test-connection`. With several integrations (set up by the platform), the
`integration` parameter names one.
"""

from __future__ import annotations

import marshmallow as ma
from flask import url_for
from flask_login import current_user
from marshmallow import fields, validate
from sqlalchemy import select

from vsync.api import bp
from vsync.api.access import requires
from vsync.api.schemas import Body, ErrorEnvelope, Query, UtcDateTimeField
from vsync.api.sync import SyncRunSchema, run_json
from vsync.auth.permissions import request_org
from vsync.extensions import db
from vsync.http import error_response
from vsync.mightycall import STANDARD_BASE_URL
from vsync.models import Integration, SyncRun
from vsync.models.operations import SUCCEEDED
from vsync.models.orgs import MANAGER, ORG_ADMIN
from vsync.services.integrations import check_connection, integration_for, save_account
from vsync.services.sync import ALL_KINDS, cursor_of


class IntegrationQuery(Query):
    integration = fields.Integer(
        load_default=None, metadata={"description": "The integration's id, when the org has several."}
    )


class WebhookStatusSchema(ma.Schema):
    token_set = fields.Boolean(
        required=True,
        metadata={"description": "A webhook URL has been issued; its token is shown once, when it is made."},
    )
    signatures_required = fields.Boolean(
        required=True, metadata={"description": "Deliveries must carry X-Vsync-Signature (a signing relay)."}
    )


class KindStatusSchema(ma.Schema):
    kind = fields.String(required=True)
    synced_until = UtcDateTimeField(
        allow_none=True,
        required=True,
        metadata={"description": "End of the last completed window (calls, sms); null before the first."},
    )
    last_succeeded_at = UtcDateTimeField(allow_none=True, required=True)
    last_run = fields.Nested(SyncRunSchema, allow_none=True, required=True)


class IntegrationSchema(ma.Schema):
    id = fields.Integer(required=True)
    name = fields.String(required=True)
    base_url = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "active or disabled."})
    credentials_set = fields.Boolean(
        required=True,
        metadata={"description": "The API key and user key are stored (encrypted); they are never returned."},
    )
    webhook = fields.Nested(WebhookStatusSchema, required=True)
    last_error = fields.String(
        allow_none=True,
        required=True,
        metadata={"description": "What MightyCall said when the connection last failed; null once it works."},
    )
    sync = fields.List(fields.Nested(KindStatusSchema), required=True, metadata={"description": "Per kind."})
    created_at = UtcDateTimeField(required=True)


class SavedIntegrationSchema(IntegrationSchema):
    webhook_url = fields.String(
        metadata={
            "description": "Only when the integration is created: the URL to give MightyCall for its webhooks. "
            "Shown once; store it now."
        }
    )


class AccountBody(Body):
    api_key = fields.String(
        validate=validate.Length(1, 500),
        load_only=True,
        metadata={
            "description": "The MightyCall API key. Write-only. Required when the org has no integration yet.",
            "example": "0a1b2c3d-…",
        },
    )
    user_key = fields.String(
        validate=validate.Length(1, 500),
        load_only=True,
        metadata={"description": "The MightyCall user key (or the user's extension). Write-only.", "example": "…"},
    )
    base_url = fields.String(
        validate=validate.Length(1, 500),
        metadata={
            "description": "https://api.mightycall.com/v4 (default) or https://ccapi.mightycall.com/v4 for "
            "contact-center accounts.",
            "example": STANDARD_BASE_URL,
        },
    )
    name = fields.String(validate=validate.Length(1, 200), metadata={"example": "MightyCall"})


ConnectionSchema = ma.Schema.from_dict(
    {
        "ok": fields.Boolean(required=True),
        "base_url": fields.String(required=True),
        "numbers": fields.Integer(required=True, metadata={"description": "Numbers the account has."}),
        "phone_numbers": fields.List(fields.String(), required=True),
        "checked_at": UtcDateTimeField(required=True),
    },
    name="ConnectionCheck",
)


def _kind_status(integration: Integration, kind: str) -> dict:
    of_kind = select(SyncRun).where(SyncRun.integration_id == integration.id, SyncRun.kind == kind)
    last = db.session.scalars(of_kind.order_by(SyncRun.id.desc()).limit(1)).first()
    succeeded = db.session.scalars(
        of_kind.where(SyncRun.status == SUCCEEDED).order_by(SyncRun.id.desc()).limit(1)
    ).first()
    return {
        "kind": kind,
        "synced_until": cursor_of(integration, kind),
        "last_succeeded_at": succeeded.finished_at if succeeded else None,
        "last_run": run_json(last) if last else None,
    }


def _integration_json(integration: Integration) -> dict:
    return {
        "id": integration.id,
        "name": integration.name,
        "base_url": integration.base_url,
        "status": integration.status,
        "credentials_set": bool(integration.credentials_encrypted),
        "webhook": {
            "token_set": integration.webhook_token_hash is not None,
            "signatures_required": integration.webhook_signing_secrets_encrypted is not None,
        },
        "last_error": integration.last_error,
        "sync": [_kind_status(integration, kind) for kind in ALL_KINDS],
        "created_at": integration.created_at,
    }


@bp.get("/orgs/<org>/integration")
@requires(scope="read", role=MANAGER)
@bp.arguments(IntegrationQuery, location="query")
@bp.response(200, IntegrationSchema)
def get_integration(args, org: str):
    """The org's MightyCall account

    Host, status, whether credentials and a webhook URL are set, the last connection error, and per
    kind how far it is synced and its last run. Never a credential. 404 when the org has none.
    """
    return _integration_json(integration_for(request_org(), args["integration"]))


@bp.put("/orgs/<org>/integration")
@requires(scope="write", role=ORG_ADMIN)
@bp.arguments(IntegrationQuery, location="query")
@bp.arguments(AccountBody)
@bp.response(200, SavedIntegrationSchema)
@bp.alt_response(
    201, schema=SavedIntegrationSchema, success=True, description="Created: the answer has `webhook_url`, once."
)
def put_integration(args, account, org: str):
    """Set the org's MightyCall account

    Without an integration the org gets one (`api_key` and `user_key` required; 201, with the webhook
    URL shown once). Otherwise the fields given replace the stored ones; new credentials or a new
    host make vsync sign in afresh. Credentials are write-only. Audited, never with a credential.
    """
    integration, webhook_token = save_account(
        request_org(), integration_id=args["integration"], mightycall_hosts_only=not current_user.is_platform, **account
    )
    db.session.commit()
    answer = _integration_json(integration)
    if webhook_token is None:
        return answer
    return {**answer, "webhook_url": url_for("webhooks.receive", token=webhook_token, _external=True)}, 201


@bp.post("/orgs/<org>/integration/test")
@requires(scope="write", role=ORG_ADMIN)
@bp.arguments(IntegrationQuery, location="query")
@bp.response(200, ConnectionSchema)
@bp.alt_response(
    502,
    schema=ErrorEnvelope,
    description="MightyCall could not be reached or refused the credentials; `details.mightycall` says what it said.",
)
def test_integration(args, org: str):
    """Sign in to MightyCall and read the account's numbers

    200 with the numbers when it works; 502 (`mightycall_failed`) with MightyCall's answer and
    whether trying again may help when it does not. The outcome is kept as `last_error` and audited.
    """
    result = check_connection(integration_for(request_org(), args["integration"]))
    db.session.commit()
    if not result["ok"]:
        return error_response(
            502,
            "mightycall_failed",
            f"MightyCall connection failed: {result['error']}",
            {"mightycall": result["error"], "retryable": result["retryable"]},
        )
    return result
