"""Signing the assets a STAC API search found, where the API's storage wants it: Microsoft Planetary Computer.

The Planetary Computer's STAC API (``https://planetarycomputer.microsoft.com/api/stac/v1``)
lists Sentinel-2 assets in Azure Blob Storage that answer only requests carrying a
shared access signature (SAS) token. The token is free and anonymous: one GET of
``<API origin>/api/sas/v1/token/<collection>`` returns ``{"token": "st=...&sig=...",
"msft:expiry": "..."}``, and a signed href is the href with ``?<token>`` appended (what
the ``planetary-computer`` package's ``sign`` does). :func:`sign_items` fetches one
token per collection of the search and signs every asset href of its items in place,
before the scenes are described, so the band files' paths carry the token and every
read (on this machine or on Dask workers) is signed.

``--sign-assets`` chooses: ``auto`` (the default) signs when the API's host is
``planetarycomputer.microsoft.com``, ``planetary-computer`` signs whatever the host (a
mirror or proxy of it), ``none`` never signs. Tokens are requested like the search
(``requests``, inside :func:`layers.network.stac_api_access`, the same timeouts and retries), and
never appear in messages or in the output catalog (:func:`layers.network.redact_url`).

Limit: a token is fetched once per build and is valid until the ``msft:expiry`` the
token API gives it; a build still reading after that fails with a one-line HTTP 403 on
the next asset read, and should be split (``--bbox``) or run again.
"""

from __future__ import annotations

import urllib.parse

from geo.errors import InputError
from layers.network import STAC_API_RETRIES, STAC_API_TIMEOUT_S, redact_url, stac_api_access, stac_api_retry

PLANETARY_COMPUTER = "planetary-computer"
SIGNING_MODES = ("auto", PLANETARY_COMPUTER, "none")
PLANETARY_COMPUTER_HOST = "planetarycomputer.microsoft.com"
TOKEN_PATH = "/api/sas/v1/token/"


def signing_for(api_url: str, mode: str) -> str | None:
    """How the assets of ``api_url`` are signed under ``mode`` (:data:`SIGNING_MODES`): :data:`PLANETARY_COMPUTER` or None."""
    if mode not in SIGNING_MODES:
        raise InputError(f"--sign-assets {mode}: use one of {', '.join(SIGNING_MODES)}")
    if mode == "auto":
        host = (urllib.parse.urlsplit(api_url).hostname or "").lower()
        return PLANETARY_COMPUTER if host == PLANETARY_COMPUTER_HOST else None
    return None if mode == "none" else PLANETARY_COMPUTER


def sign_items(items: list, api_url: str, mode: str, where: str) -> None:
    """Sign every asset href of ``items`` (pystac Items found at ``api_url``) in place, when ``mode`` says so.

    One token per collection (the item's ``collection``, fetched once); ``where`` names the
    API in errors, which are one line and never show a token.
    """
    if signing_for(api_url, mode) is None:
        return
    parts = urllib.parse.urlsplit(api_url)
    origin = f"{parts.scheme}://{parts.netloc}"
    tokens: dict[str, str] = {}
    for item in items:
        collection = item.collection_id or ""
        if collection not in tokens:
            tokens[collection] = planetary_computer_token(origin, collection, where)
        for asset in item.assets.values():
            asset.href = signed_href(asset.href, tokens[collection])


def signed_href(href: str, token: str) -> str:
    """``href`` with the SAS ``token`` as its query (added to a query it has; an href already signed is kept)."""
    parts = urllib.parse.urlsplit(href)
    if "sig" in urllib.parse.parse_qs(parts.query):
        return href
    query = f"{parts.query}&{token}" if parts.query else token
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def planetary_computer_token(origin: str, collection: str, where: str) -> str:
    """The SAS token of ``collection`` from the token API at ``origin`` (a GET, retried as the search is;
    errors in one line)."""
    import requests
    import requests.adapters

    if not collection:
        raise InputError(f"{where}: an item names no collection, so no Planetary Computer token can be asked for it")
    url = f"{origin}{TOKEN_PATH}{urllib.parse.quote(collection, safe='')}"
    failed = f"{where}: cannot get a Planetary Computer token for collection {collection} from {redact_url(url)}"
    with stac_api_access(), requests.Session() as session:
        session.mount(
            f"{urllib.parse.urlsplit(origin).scheme}://", requests.adapters.HTTPAdapter(max_retries=stac_api_retry())
        )
        try:
            response = session.get(url, timeout=STAC_API_TIMEOUT_S)
        except requests.exceptions.RetryError:
            raise InputError(f"{failed}: it stayed busy (HTTP 429/5xx) through {STAC_API_RETRIES} retries") from None
        except requests.RequestException as exc:
            raise InputError(f"{failed}: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise InputError(f"{failed}: it answered HTTP {response.status_code}")
    try:
        token = response.json()["token"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{failed}: the answer is not JSON with a token") from None
    if not isinstance(token, str) or not token.strip() or any(c in token for c in "#?\r\n\t "):
        raise InputError(f"{failed}: the token it gave is not a URL query")
    return token
