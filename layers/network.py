"""GDAL's network access: off for the whole process, on for one remote file at a time.

minewatch reads local files, and makes no network request unless the user gave a STAC
API URL (``build-activity --scenes https://...``). GDAL, though, fetches over HTTP
whenever a dataset name or a file's content asks it to: ``/vsicurl/``, ``/vsis3/`` and
the other network file systems, ``http://`` names, WMS/WFS/OGC API descriptions, VRTs
pointing at URLs. :func:`apply_offline_policy` is called once at process start
(``app.main`` for the command line, ``dashboard.create_app`` for the server) and sets
GDAL configuration in the process environment, which both bundled GDALs (rasterio's
and pyogrio's, two separate libraries that no ``rasterio.Env`` reaches both of) read
at each request, and which every child process (local Dask workers) inherits:

==================================  ======================  =============================================
option                              offline value           why
==================================  ======================  =============================================
CPL_VSIL_CURL_ALLOWED_FILENAME      ``minewatch:network-    every name given to ``/vsicurl/``, ``/vsis3/``,
                                    off``                   ``/vsigs/``, ``/vsiaz/``... differs from it, so
                                                            GDAL refuses it before connecting
CPL_VSIL_CURL_ALLOWED_EXTENSIONS    ``.minewatch-network-   the same refusal, should a library unset the
                                    off``                   first option
GDAL_HTTP_PROXY, GDAL_HTTPS_PROXY   ``http://127.0.0.1:1``  drivers that fetch by themselves (WMS, WFS,
                                                            OAPIF, GeoJSON over HTTP, ``/vsicurl_streaming/``)
                                                            can only reach a closed port on this machine
no_proxy, NO_PROXY                  ``minewatch.invalid``   libcurl skips that proxy for the hosts these
                                                            list (``127.0.0.1``, an intranet...): no host
                                                            is exempt now
GDAL_HTTP_MAX_RETRY                 ``0``                   a refused request fails at once...
GDAL_HTTP_CONNECTTIMEOUT,           ``1``, ``2`` (s)        ...and never hangs
GDAL_HTTP_TIMEOUT
PROJ_NETWORK                        ``OFF``                 PROJ (pyproj's, and GDAL's own) downloads no
                                                            transformation grids; pyproj is told directly
                                                            too, for contexts it made already
==================================  ======================  =============================================

``GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR`` is *not* set for the process: with it GDAL
would no longer find a local Shapefile's ``.prj`` or a GeoTIFF's ``.aux.xml`` beside it.
It is set for remote reads, where a directory listing would be one more request.

The user's own proxy settings (``GDAL_HTTP_PROXY``, ``no_proxy``...) are kept under
``MINEWATCH_USER_<name>`` in the environment, so remote reads still go through the
user's proxy and honour its exceptions.

When a STAC API was asked for, :func:`remote_reads` allows exactly one URL for the time
of one read, with the timeouts of :data:`REMOTE_GDAL_CONFIG`. It is a ``rasterio.Env``:
thread-local in worker threads (and a Dask task enters it itself, in whatever process it
runs); in the main thread rasterio sets it process-wide for the block, which still
allows that one URL only. The search itself is made by
pystac-client with ``requests`` (not GDAL), inside :func:`stac_api_access`, with the
timeouts of :data:`STAC_API_TIMEOUT_S` and :data:`STAC_API_RETRIES`; so is the
Planetary Computer's token request (:mod:`layers.asset_signing`), one per collection.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import re
import urllib.parse
import urllib.request
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager

from geo.errors import InputError

BLACKHOLE_PROXY = "http://127.0.0.1:1"
OFFLINE_GDAL_CONFIG: dict[str, str] = {
    "CPL_VSIL_CURL_ALLOWED_FILENAME": "minewatch:network-off",
    "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".minewatch-network-off",
    "GDAL_HTTP_PROXY": BLACKHOLE_PROXY,
    "GDAL_HTTPS_PROXY": BLACKHOLE_PROXY,
    "no_proxy": "minewatch.invalid",
    "NO_PROXY": "minewatch.invalid",
    "GDAL_HTTP_MAX_RETRY": "0",
    "GDAL_HTTP_CONNECTTIMEOUT": "1",
    "GDAL_HTTP_TIMEOUT": "2",
    "PROJ_NETWORK": "OFF",
}
"""What :func:`apply_offline_policy` puts in the environment (see the module's table)."""

REMOTE_GDAL_CONFIG: dict[str, str] = {
    # 10 s to connect: a slow satellite link answers in 1-2 s; longer means down.
    "GDAL_HTTP_CONNECTTIMEOUT": "10",
    # 120 s for one request: a window of a band (a few hundred kB to a few MB of a
    # COG) at 64 kbit/s, the weak links monitors work on.
    "GDAL_HTTP_TIMEOUT": "120",
    # ...but a transfer stalled below 1 kB/s for 30 s is given up.
    "GDAL_HTTP_LOW_SPEED_LIMIT": "1024",
    "GDAL_HTTP_LOW_SPEED_TIME": "30",
    # 3 retries of HTTP 429/5xx and dropped connections, 2 s apart at least: rides out
    # a busy server, gives up within about a minute when it is down.
    "GDAL_HTTP_MAX_RETRY": "3",
    "GDAL_HTTP_RETRY_DELAY": "2",
    # No directory listing and no probing for sidecar files (.aux.xml, .ovr, .msk):
    # one request fewer per file, and nothing fetched that was not named.
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    # CPL_VSIL_CURL_USE_HEAD stays at its default (YES): with NO, GDAL learns a file's
    # size by a GET it aborts after the headers, which costs the connection and bytes in
    # flight; GDAL already switches to GET by itself for pre-signed S3 URLs.
}
"""GDAL configuration of a remote read (:func:`remote_reads`), with the reasons for each value."""

STAC_API_TIMEOUT_S: tuple[float, float] = (10.0, 60.0)
"""``requests`` timeouts of each STAC API call: 10 s to connect, 60 s between bytes of the answer."""
STAC_API_RETRIES = 3
"""Retries of a STAC API call answered 429/502/503/504 or cut (a refused connection: 1), 0, 1, 2 s apart."""


def stac_api_retry():
    """The ``urllib3`` retry policy of every STAC API call (the search, a token request): :data:`STAC_API_RETRIES`.

    A refused connection is tried twice (it is rarely transient); timeouts and busy
    answers up to the limit, POSTs too (a search is as safe to repeat as a GET).
    """
    from urllib3 import Retry

    return Retry(
        total=STAC_API_RETRIES,
        connect=1,
        backoff_factor=0.5,
        status_forcelist=(429, 502, 503, 504),
        allowed_methods=None,
    )


_SAVED = "MINEWATCH_USER_"
_PROXY_KEYS = ("GDAL_HTTP_PROXY", "GDAL_HTTPS_PROXY", "no_proxy", "NO_PROXY")
_REMOTE_SCHEMES = ("http", "https")
_VSICURL = "/vsicurl/"


def apply_offline_policy(environ: MutableMapping[str, str] | None = None) -> None:
    """Turn GDAL's network access off for this process and its children.

    Sets :data:`OFFLINE_GDAL_CONFIG` in ``environ`` (default ``os.environ``); the user's
    proxy settings are kept aside first for :func:`remote_reads`. Calling it again
    changes nothing. Call it before any dataset is opened: at the start of
    ``app.main`` and of ``dashboard.create_app``.
    """
    process = environ is None
    environ = os.environ if environ is None else environ
    for key in _PROXY_KEYS:
        current = environ.get(key)
        if current != OFFLINE_GDAL_CONFIG[key]:  # the user's value now (set again since the last call?)
            environ[_SAVED + key] = current or ""
    environ.update(OFFLINE_GDAL_CONFIG)
    if process:
        import pyproj.network

        pyproj.network.set_network_enabled(active=False)


def offline_policy_applied(environ: MutableMapping[str, str] | None = None) -> bool:
    """True when :func:`apply_offline_policy` is in force in ``environ`` (default ``os.environ``)."""
    environ = os.environ if environ is None else environ
    return all(environ.get(key) == value for key, value in OFFLINE_GDAL_CONFIG.items())


def is_remote_url(text: str) -> bool:
    """True for an ``http://`` or ``https://`` URL (the only remote addresses minewatch may read)."""
    return urllib.parse.urlsplit(str(text)).scheme.lower() in _REMOTE_SCHEMES and "://" in str(text)


def vsicurl_path(url: str) -> str:
    """The GDAL name of a remote file: ``/vsicurl/`` + ``url``; only http(s) URLs are accepted."""
    if not is_remote_url(url):
        raise ValueError(f"{url}: only http:// and https:// URLs can be read remotely")
    return _VSICURL + url


def remote_gdal_config(path: str, environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """GDAL configuration that lets GDAL read exactly ``path`` (a ``/vsicurl/`` name) and nothing else.

    :data:`REMOTE_GDAL_CONFIG`, the file as the only allowed name, and the user's own
    proxy for its host (none when the user's ``no_proxy`` exempts the host).
    """
    if not path.startswith(_VSICURL) or not is_remote_url(path.removeprefix(_VSICURL)):
        raise ValueError(f"{path}: not a /vsicurl/ name of an http(s) URL")
    proxy = user_proxy(path.removeprefix(_VSICURL), environ)
    return {
        **REMOTE_GDAL_CONFIG,
        "CPL_VSIL_CURL_ALLOWED_FILENAME": path,
        "GDAL_HTTP_PROXY": proxy,
        "GDAL_HTTPS_PROXY": proxy,
    }


@contextmanager
def remote_reads(path: str) -> Iterator[None]:
    """Let GDAL read the remote file ``path`` (``/vsicurl/https://...``) inside the block.

    Everything else stays refused, sidecar files of ``path`` included. Open the file
    inside the block, read, and close it before leaving. Thread-local in worker threads;
    process-wide in the main thread (rasterio's rule), still for ``path`` only.
    """
    import rasterio

    with rasterio.Env(**remote_gdal_config(path)):
        yield


def user_proxy(url: str, environ: MutableMapping[str, str] | None = None) -> str:
    """The proxy the user set for ``url`` (``""``: connect directly), as it was before the offline policy.

    Reads ``GDAL_HTTPS_PROXY``/``GDAL_HTTP_PROXY``, else ``https_proxy``/``http_proxy``/
    ``all_proxy``, and honours ``no_proxy``.
    """
    environ = os.environ if environ is None else environ
    parts = urllib.parse.urlsplit(url)
    no_proxy = _user_value("no_proxy", environ) or _user_value("NO_PROXY", environ)
    if no_proxy and urllib.request.proxy_bypass_environment(parts.netloc, {"no": no_proxy}):
        return ""
    names = ["GDAL_HTTPS_PROXY"] if parts.scheme == "https" else []
    names.append("GDAL_HTTP_PROXY")
    for name in names:
        value = _user_value(name, environ)
        if value:
            return value
    for name in (f"{parts.scheme}_proxy", f"{parts.scheme.upper()}_PROXY", "all_proxy", "ALL_PROXY"):
        if environ.get(name):
            return environ[name]
    return ""


@contextmanager
def stac_api_access() -> Iterator[None]:
    """The block in which pystac-client searches a STAC API (``requests``, not GDAL).

    ``requests`` honours ``no_proxy`` as libcurl does, so the user's own value is put
    back for the block and the offline one after it. The process environment is
    changed: enter it from the main thread, before any worker starts.
    """
    changed = {}
    for key in ("no_proxy", "NO_PROXY"):
        if os.environ.get(key) == OFFLINE_GDAL_CONFIG[key] and _SAVED + key in os.environ:
            changed[key] = os.environ[key]
            if os.environ[_SAVED + key]:
                os.environ[key] = os.environ[_SAVED + key]
            else:
                del os.environ[key]
    try:
        yield
    finally:
        os.environ.update(changed)


def redact_url(url: str) -> str:
    """``url`` without its query string and credentials (signed URLs carry tokens), for messages."""
    parts = urllib.parse.urlsplit(url)
    netloc = re.sub(r"^[^@]*@", "", parts.netloc)
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _user_value(key: str, environ: MutableMapping[str, str]) -> str:
    if _SAVED + key in environ:
        return environ[_SAVED + key]
    value = environ.get(key, "")
    return "" if value == OFFLINE_GDAL_CONFIG.get(key) else value


def local_only_stac_io(root: str | os.PathLike | None = None):
    """A pystac ``StacIO`` whose reads refuse any href that is not a local file (``ValueError``).

    With ``root``, local files outside that folder are refused too: a stranger's catalog
    cannot make minewatch read ``/home/user/notes.json`` through a link.
    """
    import pystac.stac_io

    inside = None if root is None else os.path.realpath(root)

    class _LocalOnly(pystac.stac_io.DefaultStacIO):
        def read_text(self, source, *args, **kwargs) -> str:
            href = str(source)
            scheme = urllib.parse.urlsplit(href).scheme.lower()
            if "://" in href and scheme != "file" or href.startswith("/vsi"):
                raise ValueError(f"{href}: links to a remote or virtual file; minewatch reads local STAC files only")
            if inside is not None:
                local = os.path.realpath(urllib.parse.urlsplit(href).path if scheme == "file" else href)
                if os.path.commonpath([local, inside]) != inside:
                    raise ValueError(f"{href}: lies outside the catalog's folder {inside}; refused")
            return super().read_text(source, *args, **kwargs)

    return _LocalOnly()


# Address classes from the most public to the most private. A STAC API's assets may be on
# addresses as private as the API's own, never more: a public API cannot send the reads to
# this machine, its network or a cloud metadata service (169.254.169.254).
PUBLIC, PRIVATE, LOOPBACK, LINK_LOCAL = range(4)
ADDRESS_CLASS_NAMES = {
    PUBLIC: "a public address",
    PRIVATE: "a private or reserved address",
    LOOPBACK: "this machine (loopback)",
    LINK_LOCAL: "a link-local address (where cloud metadata services answer)",
}


def address_class(host: str) -> int:
    """How private ``host`` is: the most private class of the addresses it resolves to.

    Raises :class:`OSError` when the name does not resolve.
    """
    return max(_address_class(address) for address in _addresses(host))


def require_asset_host(url: str, api_url: str, what: str) -> None:
    """Refuse an asset ``url`` on an address more private than the STAC API's (see :data:`ADDRESS_CLASS_NAMES`).

    ``what`` names the item and asset in the message. The check resolves the names once
    (cached); a name that resolves otherwise later (DNS rebinding) is not caught.
    """
    host = urllib.parse.urlsplit(url).hostname or ""
    api_host = urllib.parse.urlsplit(api_url).hostname or ""
    try:
        asset_class = address_class(host)
    except OSError:
        raise InputError(f"{what} is on {host!r}, a host name that does not resolve") from None
    try:
        api_class = address_class(api_host)
    except OSError:
        api_class = PUBLIC
    if asset_class > api_class:
        raise InputError(
            f"{what} is on {host} ({ADDRESS_CLASS_NAMES[asset_class]}), more private than the STAC API's host "
            f"{api_host} ({ADDRESS_CLASS_NAMES[api_class]}): refused, not read"
        )


@functools.lru_cache(maxsize=256)
def _addresses(host: str) -> tuple[str, ...]:
    import socket

    try:
        return (str(ipaddress.ip_address(host.strip("[]"))),)
    except ValueError:
        pass
    return tuple(sorted({info[4][0] for info in socket.getaddrinfo(host, None)}))


def _address_class(text: str) -> int:
    address = ipaddress.ip_address(text.split("%")[0])
    if getattr(address, "ipv4_mapped", None):
        address = address.ipv4_mapped
    if address.is_link_local:
        return LINK_LOCAL
    if address.is_loopback:
        return LOOPBACK
    if address.is_private or address.is_reserved or address.is_unspecified or address.is_multicast:
        return PRIVATE
    if address in ipaddress.ip_network("100.64.0.0/10"):  # carrier-grade NAT: not the internet either
        return PRIVATE
    return PUBLIC
