"""NATS identities: a party proves it holds its Ethereum key and gets permissions for its
own address only (nats-server's auth callout; docs/NATS.md).

nats-server sends a fresh nonce to every connection. The client signs it with its Ethereum
key (`nats_login_digest`) and sends the signature with its claimed address. The server
hands that to the auth service (`AuthService`, `connext nats-auth`). The service recovers
the signer and answers with a user JWT, signed by the issuer key, that allows:

- a user: publish to the node's subjects as itself, `connext.<node>.<user>.>`, and stream
  vouchers and closes to anyone, `connext.*.<user>.stream.{vouchers,close}`; subscribe to
  its own subjects `connext.<user>.>` and its own inbox `_INBOX.<user>.>`; reply once to a
  request it received;
- a node: publish to anyone as itself, `connext.*.<node>.>`; subscribe to its own
  subjects (its replicas share them in a queue group) and its own inbox.

Nobody else can read another party's subjects or inbox, serve the node, or put a status
header ("no responders") into another party's inbox: only nats-server and the party a
request went to can publish there. The JWT expires after `ttl_s`; nats-server then closes
the connection and the client logs in again with a new nonce.

The auth service's own credential (a static nkey user of the AUTH account) and the
issuer key are made by `connext nats-config` (`AuthKeys`), which also writes the server's
configuration. JWTs are nats-server's v2 format: ed25519 over `header.payload`.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nacl.exceptions
import nacl.signing
import nats
import nats.errors
import nkeys
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from ..protocol.encoding import checksum, nats_login_digest
from ..protocol.signing import Signer, recover
from ..protocol.types import Address

log = logging.getLogger(__name__)

SUBJECT_ROOT = "connext"
AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"
APP_ACCOUNT = "CONNEXT"
AUTH_ACCOUNT = "AUTH"
AUTH_QUEUE = "connext-auth"
DEFAULT_TTL_S = 3600.0
RESPONSE_TTL_NS = 300 * 10**9
"""How long a party may answer a request it received (the node's slowest handler)."""
ISSUER_FILE = "issuer.nk"
SERVICE_FILE = "auth-service.nk"
CONFIG_FILE = "nats.conf"
STREAM_METHODS = ("stream.vouchers", "stream.close")


def inbox_prefix(address: Address) -> str:
    """Where replies to `address`'s requests go; only it may subscribe there."""
    return f"_INBOX.{address.lower()}"


def login_signature(signer: Signer, nonce: str) -> bytes:
    return signer.sign(nats_login_digest(nonce))


def login_options(signer: Signer) -> dict[str, Any]:
    """`nats.connect` options that log in as `signer` (harmless on a server without
    authorization: it sends no nonce, and the token is ignored)."""

    def sign(nonce: str) -> bytes:
        return login_signature(signer, nonce).hex().encode()

    return {"signature_cb": sign, "token": signer.address,
            "inbox_prefix": inbox_prefix(signer.address)}


# --- permissions ---------------------------------------------------------------------------

def user_permissions(user: Address, nodes: Iterable[Address]) -> dict[str, Any]:
    me = user.lower()
    publish = [f"{SUBJECT_ROOT}.{node.lower()}.{me}.>" for node in nodes]
    publish += [f"{SUBJECT_ROOT}.*.{me}.{method}" for method in STREAM_METHODS]
    return {"pub": {"allow": publish},
            "sub": {"allow": [f"{SUBJECT_ROOT}.{me}.>", f"{inbox_prefix(user)}.>"]},
            "resp": {"max": 1, "ttl": RESPONSE_TTL_NS}}


def node_permissions(node: Address) -> dict[str, Any]:
    me = node.lower()
    return {"pub": {"allow": [f"{SUBJECT_ROOT}.*.{me}.>"]},
            "sub": {"allow": [f"{SUBJECT_ROOT}.{me}.>", f"{inbox_prefix(node)}.>"]},
            "resp": {"max": 1, "ttl": RESPONSE_TTL_NS}}


# --- keys and the server's configuration ----------------------------------------------------

def new_keypair(prefix: int) -> nkeys.KeyPair:
    return nkeys.from_seed(nkeys.encode_seed(os.urandom(32), prefix))


@dataclass(frozen=True)
class AuthKeys:
    """The issuer (an account key: signs the users' JWTs; nats-server trusts it) and the
    auth service's own nkey user (the only one nats-server admits without the callout)."""

    issuer_seed: bytes
    service_seed: bytes

    @classmethod
    def create(cls) -> AuthKeys:
        return cls(bytes(new_keypair(nkeys.PREFIX_BYTE_ACCOUNT).seed),
                   bytes(new_keypair(nkeys.PREFIX_BYTE_USER).seed))

    @classmethod
    def load(cls, directory: Path) -> AuthKeys:
        try:
            return cls((directory / ISSUER_FILE).read_bytes().strip(),
                       (directory / SERVICE_FILE).read_bytes().strip())
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"no NATS auth keys in {directory}: run `connext nats-config --dir "
                f"{directory}`") from exc

    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        for name, seed in ((ISSUER_FILE, self.issuer_seed), (SERVICE_FILE, self.service_seed)):
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                out.write(seed + b"\n")

    @property
    def issuer(self) -> nkeys.KeyPair:
        return nkeys.from_seed(bytearray(self.issuer_seed))

    @property
    def service(self) -> nkeys.KeyPair:
        return nkeys.from_seed(bytearray(self.service_seed))


def server_config(keys: AuthKeys, *, host: str = "127.0.0.1", port: int = 4222) -> str:
    """nats-server's configuration: every connection but the auth service's goes through
    the callout and lands in the CONNEXT account with what its JWT allows."""
    service = keys.service.public_key.decode()
    return f"""# made by `connext nats-config`; the keys beside it are secrets
listen: "{host}:{port}"
max_payload: 1MB
accounts {{
  {AUTH_ACCOUNT}: {{ users: [ {{ nkey: {service} }} ] }}
  {APP_ACCOUNT}: {{}}
  SYS: {{}}
}}
system_account: SYS
authorization {{
  timeout: 5
  auth_callout {{
    issuer: {keys.issuer.public_key.decode()}
    auth_users: [ {service} ]
    account: {AUTH_ACCOUNT}
  }}
}}
"""


def write_config(directory: Path, *, host: str = "127.0.0.1", port: int = 4222,
                 rotate: bool = False) -> Path:
    """Keys (kept unless `rotate`) and nats.conf in `directory`; returns the config path."""
    try:
        keys = AuthKeys.create() if rotate else AuthKeys.load(directory)
    except FileNotFoundError:
        keys = AuthKeys.create()
    keys.save(directory)
    path = directory / CONFIG_FILE
    path.write_text(server_config(keys, host=host, port=port))
    return path


# --- JWTs ---------------------------------------------------------------------------------

class InvalidJwt(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())


def encode_jwt(claims: dict[str, Any], issuer: nkeys.KeyPair, *,
               now: float | None = None) -> str:
    body = dict(claims, iat=int(time.time() if now is None else now),
                iss=issuer.public_key.decode())
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()
    body["jti"] = base64.b32encode(digest).decode().rstrip("=")
    payload = _b64(json.dumps(body).encode())
    signature = issuer.sign(f"{_HEADER}.{payload}".encode())
    return f"{_HEADER}.{payload}.{_b64(signature)}"


def decode_jwt(token: str, *, issuer_prefix: str | None = None) -> dict[str, Any]:
    """The claims of `token` once its signature checks out against its own `iss` (a public
    nkey, starting with `issuer_prefix` when given)."""
    try:
        header, payload, signature = token.split(".")
        claims = json.loads(_unb64(payload))
        issuer = str(claims["iss"])
        if issuer_prefix is not None and not issuer.startswith(issuer_prefix):
            raise InvalidJwt(f"issued by {issuer}")
        _verify_key(issuer).verify(f"{header}.{payload}".encode(), _unb64(signature))
    except InvalidJwt:
        raise
    except (ValueError, KeyError, TypeError, binascii.Error,
            nacl.exceptions.BadSignatureError) as exc:
        raise InvalidJwt(f"not a valid JWT: {type(exc).__name__}") from exc
    if not isinstance(claims, dict):
        raise InvalidJwt("the claims are not an object")
    return claims


def _verify_key(public: str) -> nacl.signing.VerifyKey:
    raw = base64.b32decode(public + "=" * (-len(public) % 8))
    body, crc = raw[:-2], int.from_bytes(raw[-2:], "little")
    if len(body) != 33 or nkeys.crc16(bytearray(body)) != crc:
        raise ValueError("not a public nkey")
    return nacl.signing.VerifyKey(body[1:])


# --- the auth service ---------------------------------------------------------------------

class LoginRefused(Exception):
    pass


@dataclass
class Authorizer:
    """Decides one login: who signed the nonce, and what that address may do."""

    keys: AuthKeys
    nodes: frozenset[Address]
    ttl_s: float = DEFAULT_TTL_S
    clock: Callable[[], float] = time.time

    def answer(self, request_jwt: str) -> str:
        """The signed authorization response to the server's request: a user JWT, or an
        error that makes the server refuse the connection."""
        request = decode_jwt(request_jwt, issuer_prefix="N")
        if request.get("aud") != "nats-authorization-request":
            raise InvalidJwt("not an authorization request")
        claims = request.get("nats") or {}
        user_nkey = str(claims.get("user_nkey", ""))
        server = str((claims.get("server_id") or {}).get("id", ""))
        if not user_nkey or not server:
            raise InvalidJwt("the request names no user or server")
        issuer = self.keys.issuer
        try:
            address = self.login(claims)
        except LoginRefused as exc:
            log.info("NATS login refused: %s", exc)
            return encode_jwt({"sub": user_nkey, "aud": server, "nats": {
                "error": str(exc), "type": "authorization_response", "version": 2}}, issuer)
        now = self.clock()
        permissions = (node_permissions(address) if address in self.nodes
                       else user_permissions(address, self.nodes))
        user = encode_jwt({
            "sub": user_nkey, "aud": APP_ACCOUNT, "name": address,
            "exp": int(now + self.ttl_s),
            "nats": dict(permissions, subs=-1, data=-1, payload=-1, type="user", version=2),
        }, issuer, now=now)
        return encode_jwt({"sub": user_nkey, "aud": server, "nats": {
            "jwt": user, "type": "authorization_response", "version": 2}}, issuer, now=now)

    @staticmethod
    def login(claims: dict[str, Any]) -> Address:
        nonce = (claims.get("client_info") or {}).get("nonce")
        options = claims.get("connect_opts") or {}
        claimed, signature = options.get("auth_token"), options.get("sig")
        if not isinstance(nonce, str) or not nonce:
            raise LoginRefused("the server sent no nonce")
        if not isinstance(claimed, str) or not isinstance(signature, str):
            raise LoginRefused("no address and signature: log in with your Ethereum key")
        try:
            address = checksum(claimed)
            signer = recover(nats_login_digest(nonce), bytes.fromhex(signature))
        except Exception as exc:
            raise LoginRefused(f"unreadable credentials ({type(exc).__name__})") from None
        if signer != address:
            raise LoginRefused(f"the signature is not {address}'s")
        return address


class AuthService:
    """Answers nats-server's auth callouts (every replica in one queue group)."""

    def __init__(self, nats_url: str, keys: AuthKeys, nodes: Iterable[Address], *,
                 ttl_s: float = DEFAULT_TTL_S) -> None:
        self.nats_url = nats_url
        self.keys = keys
        self.authorizer = Authorizer(keys, frozenset(checksum(n) for n in nodes), ttl_s)
        self._nc: NatsClient | None = None

    async def start(self, *, attempts: int = 30) -> None:
        """Connect (trying `attempts` times, a second apart: nats-server may still be
        starting), then answer logins, reconnecting for as long as it runs."""
        nc = await nats.connect(self.nats_url, nkeys_seed_str=self.keys.service_seed.decode(),
                                name="connext-auth", max_reconnect_attempts=attempts,
                                reconnect_time_wait=1, connect_timeout=2)
        nc.options["max_reconnect_attempts"] = -1
        await nc.subscribe(AUTH_SUBJECT, queue=AUTH_QUEUE, cb=self._on_request)
        await nc.flush()
        self._nc = nc

    async def _on_request(self, msg: Msg) -> None:
        try:
            answer = self.authorizer.answer(msg.data.decode())
        except (InvalidJwt, UnicodeDecodeError) as exc:
            log.warning("dropped an auth request that is not the server's: %s", exc)
            return
        with contextlib.suppress(nats.errors.Error):
            await msg.respond(answer.encode())

    async def stop(self) -> None:
        nc, self._nc = self._nc, None
        if nc is not None:
            await nc.close()


__all__ = [
    "AuthKeys", "AuthService", "Authorizer", "InvalidJwt", "LoginRefused", "decode_jwt",
    "encode_jwt", "inbox_prefix", "login_options", "node_permissions", "server_config",
    "user_permissions", "write_config",
]
