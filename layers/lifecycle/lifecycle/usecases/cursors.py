"""List cursors (api.md, Input limits): opaque, and valid only for the caller's account and the
list that issued them; anything else is `400 invalid_cursor` and never starts a read.

A cursor is the id of the last item of a page, with an HMAC-SHA256 of the list's name, the
account and that id: `<id, base64url>.<tag, base64url>`. The store turns the id into a key
only after it has checked its form (`Store.list_integrations`, `Store.list_charges`), so even a
cursor signed by mistake cannot start a query outside the account's items.

The key comes from configuration, never from the code: env `CURSOR_SECRETS` (the local stack
writes one to `.local/cursor-secret`, mode 0600; the tests generate one per run), else the SSM
SecureString named by `CURSOR_SECRETS_PARAM` (template.yaml). Several comma-separated keys
rotate it: cursors are signed with the first and accepted with any.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re

from lifecycle.ids import is_issued
from lifecycle.rules.errors import InvalidCursor
from lifecycle.settings import secret_list

SECRETS_VARIABLE = "CURSOR_SECRETS"
# The lists that page, and the prefix of the ids their cursors carry.
INTEGRATIONS = "integrations"
CHARGES = "charges"
_ID_PREFIX = {INTEGRATIONS: "int", CHARGES: "ch"}
_TAG_BYTES = 16  # 128 bits of the HMAC: forging one is out of reach
# base64url without padding: an id of at most 64 characters of at most 4 bytes each, a dot and
# the 16-byte tag in 22 characters.
_CURSOR = re.compile(r"(?P<id>[A-Za-z0-9_-]{2,342})\.(?P<tag>[A-Za-z0-9_-]{22})")


def issue(list_name: str, account_id: str, last_id: str | None) -> str | None:
    """The cursor of the page after `last_id` (None: there is no next page)."""
    if last_id is None:
        return None
    tag = _tag(secret_list(SECRETS_VARIABLE)[0], list_name, account_id, last_id)
    return f"{_encode(last_id.encode())}.{_encode(tag)}"


def resume_after(list_name: str, account_id: str, cursor: str | None) -> str | None:
    """The id a page starts after: None for the first page; `InvalidCursor` for a cursor this
    API did not issue for `account_id` and `list_name`."""
    if cursor is None:
        return None
    last_id, tag = _parts(cursor)
    if not is_issued(last_id, _ID_PREFIX[list_name]):
        raise _invalid()
    for secret in secret_list(SECRETS_VARIABLE):
        if hmac.compare_digest(tag, _tag(secret, list_name, account_id, last_id)):
            return last_id
    raise _invalid()


def _parts(cursor: str) -> tuple[str, bytes]:
    found = _CURSOR.fullmatch(cursor)
    if found is None:
        raise _invalid()
    try:
        return _decode(found["id"]).decode("utf-8"), _decode(found["tag"])
    except (binascii.Error, ValueError):  # UnicodeDecodeError is a ValueError
        raise _invalid() from None


def _tag(secret: str, list_name: str, account_id: str, last_id: str) -> bytes:
    # Newlines cannot occur in a list name, an account id or an issued id: no two different
    # (list, account, id) give the same message.
    message = f"cursor\n{list_name}\n{account_id}\n{last_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()[:_TAG_BYTES]


def _encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _invalid() -> InvalidCursor:
    return InvalidCursor(
        "The cursor is not one this API returned for this list: start again without a cursor.",
        field="cursor",
    )
