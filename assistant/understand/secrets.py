"""Secrets (API keys, tokens, passwords) read from a file, a systemd credential or the
environment, in that order. Error messages name where a secret was looked for, never the secret."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from assistant.config import PATH_MISSING, path_problem
from assistant.errors import ConfigError


@dataclass(frozen=True)
class SecretSource:
    """Where one secret may be: `file` (a setting's value, named `file_key`), the systemd
    credential `credential` (`LoadCredential=NAME:/path`), then the variable `env`."""

    what: str
    """What it is, for messages ("API key", "token")."""
    file: str
    file_key: str
    credential: str
    env: str
    env_key: str = ""
    """The setting that names `env`, if any, for messages."""
    in_a_header: bool = True
    """It goes into an HTTP header (a token, a key): visible ASCII with no space. Otherwise
    (a password) any one line."""

    def read(self, environ: Mapping[str, str] = os.environ) -> str | None:
        """The secret, or None when none of the places holds one; ConfigError when one is unusable."""
        if self.file:
            return self._read(Path(self.file), self.file_key)
        if credentials := environ.get("CREDENTIALS_DIRECTORY"):
            path = Path(credentials.split(":")[0]) / self.credential
            if path.exists():
                return self._read(path, f"the systemd credential {self.credential}")
        secret = environ.get(self.env, "").strip() if self.env else ""
        if secret:
            self._check(secret, f"${self.env}" + (f" ({self.env_key})" if self.env_key else ""))
        return secret or None

    def _read(self, path: Path, source: str) -> str:
        if (problem := path_problem(path)) is not None and problem != PATH_MISSING:  # a FIFO would block
            raise ConfigError(f"{path}: {problem} ({source})")
        try:
            text = path.read_text(encoding="utf-8")
            secret = text.strip() if self.in_a_header else text.rstrip("\r\n")
        except FileNotFoundError:
            raise ConfigError(f"{path}: no such {self.what} file ({source})") from None
        except OSError as err:
            raise ConfigError(f"{path}: cannot read the {self.what} ({source}): {err.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: the {self.what} file is not text ({source})") from None
        if not secret:
            raise ConfigError(f"{path}: the {self.what} file is empty ({source})")
        self._check(secret, f"{path} ({source})")
        return secret

    def _check(self, secret: str, where: str) -> None:
        if not self.in_a_header:
            if "\n" in secret or "\r" in secret:
                raise ConfigError(f"{where}: the {self.what} file must hold one line")
            return
        # It goes into an HTTP header: one line of visible ASCII.
        if not (secret.isascii() and secret.isprintable() and " " not in secret):
            raise ConfigError(f"{where}: the {self.what} must be one line of visible ASCII characters")
