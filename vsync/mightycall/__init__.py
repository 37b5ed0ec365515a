"""MightyCall v4: the HTTP client, the parsers of its payloads, and a simulator standing in for it.

This package imports nothing of the app. The simulator lives in :mod:`vsync.mightycall.simulator`
and is imported only by whoever runs it.
"""

from .client import (
    CONTACT_CENTER_BASE_URL,
    RECORDING_CONTENT_TYPE,
    STANDARD_BASE_URL,
    MemoryTokenStore,
    MightyCallClient,
    Pages,
    RecordingStream,
    Token,
    TokenStore,
)
from .errors import (
    AuthenticationError,
    ClientError,
    MightyCallError,
    MightyCallNotFound,
    ProtocolError,
    RateLimited,
    ServerError,
    TransportError,
)
from .parsing import CallRecord, ParseError, SmsRecord, parse_call, parse_sms, participants

__all__ = [
    "CONTACT_CENTER_BASE_URL",
    "RECORDING_CONTENT_TYPE",
    "STANDARD_BASE_URL",
    "AuthenticationError",
    "CallRecord",
    "ClientError",
    "MemoryTokenStore",
    "MightyCallClient",
    "MightyCallError",
    "MightyCallNotFound",
    "Pages",
    "ParseError",
    "ProtocolError",
    "RateLimited",
    "RecordingStream",
    "ServerError",
    "SmsRecord",
    "Token",
    "TokenStore",
    "TransportError",
    "parse_call",
    "parse_sms",
    "participants",
]
