"""Coded errors, raised once at a stage boundary; each maps to an exit status."""

from __future__ import annotations

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_DEVICE = 69
EXIT_TEMPORARY = 75
EXIT_CONFIG = 78


class AssistantError(Exception):
    """An error a user can cause or fix: reported as one line, never a traceback."""

    exit_status = EXIT_INTERNAL
    stage = "assistant"

    def __init__(self, message: str, *, code: str = "error") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class UsageError(AssistantError):
    """Wrong command-line usage."""

    exit_status = EXIT_USAGE
    stage = "cli"


class AudioInputError(AssistantError):
    """An input file that is missing, unreadable, empty, truncated or not audio."""

    exit_status = EXIT_USAGE
    stage = "audio"


class ConfigError(AssistantError):
    """An invalid configuration file or value."""

    exit_status = EXIT_CONFIG
    stage = "config"


class ModelError(AssistantError):
    """A model file that is missing or corrupt."""

    exit_status = EXIT_CONFIG
    stage = "models"


class DeviceError(AssistantError):
    """A sound device that is missing or failed."""

    exit_status = EXIT_DEVICE
    stage = "devices"


class StageError(AssistantError):
    """A stage failed during a turn (ASR, LLM, TTS): reported as an `error` event."""

    def __init__(self, stage: str, message: str, *, code: str = "failed") -> None:
        super().__init__(message, code=code)
        self.stage = stage


class AuditLogError(AssistantError):
    """An audit log that cannot be read, or holds a line that is not a record."""

    exit_status = EXIT_USAGE
    stage = "audit"


class StateBusyError(AssistantError):
    """Another process holds the state directory: worth trying again once it has stopped."""

    exit_status = EXIT_TEMPORARY
    stage = "state"


class StateDirError(AssistantError):
    """A state directory the assistant cannot own as it is (a symbolic link where its lock goes)."""

    exit_status = EXIT_CONFIG
    stage = "state"
