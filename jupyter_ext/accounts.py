"""Local accounts for the password authenticator: scrypt-hashed passwords,
admin flag, expiry and disabling (workshops), in the lens database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from .db.engine import make_engine
from .db.migrate import ensure_schema
from .db.tables import accounts
from .usernames import LOCAL_USERNAME_RE as USERNAME_RE

# Scrypt parameters: ~50 ms per check on this class of machine, 16 MiB.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
# Generated passwords use 32 symbols that cannot be misread on a printed card
# (no 0/o, 1/l/i): 5 bits of entropy per symbol, chosen with `secrets`.
ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # 31 symbols: log2(31) = 4.95 bits each
STRONG_SYMBOLS = 16  # admin and `lens users` passwords: 79 bits, e.g. k7mq-2xfa-9pdw-rt3b
READABLE_SYMBOLS = 9  # workshop seats: 44 bits, e.g. k7m-q2x-fa9 (logins are throttled)


class AccountError(ValueError):
    """Bad account input, with a message for the user."""


@dataclass(frozen=True)
class Account:
    username: str
    admin: bool
    disabled: bool
    expires_at: datetime | None
    workshop: str | None

    def expired(self, now: datetime | None = None) -> bool:
        now = now or datetime.now(UTC).replace(tzinfo=None)
        return self.expires_at is not None and now >= self.expires_at


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    expected = base64.b64decode(digest)
    got = hashlib.scrypt(
        password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
    )
    return hmac.compare_digest(got, expected)


# Checked when the user does not exist, so that a login takes as long for an
# unknown name as for a known one: the same scrypt parameters and digest length as
# real hashes, a digest no password gives. Written out, not hashed at import: that
# was 0.24 s of every process importing this module (the launcher, the hub, the
# lens service).
_DUMMY_HASH = (f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${base64.b64encode(bytes(16)).decode()}"
               f"${base64.b64encode(bytes(64)).decode()}")


def _generate(symbols: int, group: int) -> str:
    chars = "".join(secrets.choice(ALPHABET) for _ in range(symbols))
    return "-".join(chars[i : i + group] for i in range(0, symbols, group))


def password_entropy_bits(symbols: int) -> float:
    return symbols * math.log2(len(ALPHABET))


def strong_password() -> str:
    """Admin and account passwords: 16 symbols (79 bits) in groups of four."""
    return _generate(STRONG_SYMBOLS, 4)


def readable_password() -> str:
    """Workshop seats, copied from a printed card: 9 symbols (44 bits) in groups of three."""
    return _generate(READABLE_SYMBOLS, 3)


def validate_username(name: str) -> str:
    if not isinstance(name, str) or not USERNAME_RE.match(name):
        raise AccountError(
            f"invalid user name {name!r}: use 1-24 lowercase letters, digits, '-' or '_', starting with a letter"
        )
    return name


class AccountStore:
    def __init__(self, engine: sa.Engine):
        self.engine = engine
        ensure_schema(engine)

    @classmethod
    def from_url(cls, url: str) -> AccountStore:
        return cls(make_engine(url))

    def _row_to_account(self, row) -> Account:
        return Account(row.username, bool(row.admin), bool(row.disabled), row.expires_at, row.workshop)

    def get(self, username: str) -> Account | None:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.username == username)).first()
        return self._row_to_account(row) if row else None

    def list(self, workshop: str | None = None) -> list[Account]:
        query = sa.select(accounts).order_by(accounts.c.username)
        if workshop is not None:
            query = query.where(accounts.c.workshop == workshop)
        with self.engine.connect() as conn:
            return [self._row_to_account(r) for r in conn.execute(query)]

    def create(
        self,
        username: str,
        password: str | None = None,
        *,
        admin: bool = False,
        expires_at: datetime | None = None,
        workshop: str | None = None,
    ) -> str:
        """Create an account; return its password (given, else a generated strong one). Fails if it exists."""
        validate_username(username)
        password = password or strong_password()
        if len(password) < 8:
            raise AccountError("passwords must have at least 8 characters")
        with self.engine.begin() as conn:
            if conn.execute(sa.select(accounts.c.username).where(accounts.c.username == username)).first():
                raise AccountError(f"account {username!r} already exists")
            conn.execute(
                accounts.insert().values(
                    username=username,
                    password_hash=hash_password(password),
                    admin=admin,
                    disabled=False,
                    expires_at=expires_at,
                    workshop=workshop,
                    created_at=datetime.now(UTC).replace(tzinfo=None),
                )
            )
        return password

    def update(self, username: str, **values) -> None:
        if "password" in values:
            values["password_hash"] = hash_password(values.pop("password"))
        with self.engine.begin() as conn:
            result = conn.execute(accounts.update().where(accounts.c.username == username).values(**values))
        if result.rowcount == 0:
            raise AccountError(f"no account {username!r}")

    def delete(self, username: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(accounts.delete().where(accounts.c.username == username))

    def check(self, username: str, password: str) -> tuple[Account | None, str | None]:
        """(account, None) when the password is right and the account usable,
        else (None, reason) with a reason safe to show (never which part was wrong)."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(accounts).where(accounts.c.username == username)).first()
        if row is None:
            verify_password(password, _DUMMY_HASH)  # same work, so timing does not tell who exists
            return None, None
        if not verify_password(password, row.password_hash):
            return None, None
        account = self._row_to_account(row)
        if account.disabled:
            return None, "This account has been disabled."
        if account.expired():
            return None, f"This account expired on {account.expires_at:%Y-%m-%d %H:%M} UTC."
        return account, None
