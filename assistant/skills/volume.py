"""The speaker's loudness: set, up, down, mute. A change is heard at once, this reply included."""

from __future__ import annotations

from . import SkillRequest, VolumeControl

STEP = 0.1


def set_volume(request: SkillRequest) -> str:
    return _set(request, request.slots["percent"] / 100)


def volume_up(request: SkillRequest) -> str:
    return _set(request, _control(request).volume + STEP)


def volume_down(request: SkillRequest) -> str:
    return _set(request, _control(request).volume - STEP)


def mute(request: SkillRequest) -> str:
    _set(request, 0.0)
    return ""  # nobody would hear it


def _set(request: SkillRequest, level: float) -> str:
    control = _control(request)
    control.volume = min(max(round(level, 2), 0.0), 1.0)
    return f"Volume {round(control.volume * 100)} percent."


def _control(request: SkillRequest) -> VolumeControl:
    assert request.volume is not None, "the volume skill needs the player"
    return request.volume


INTENTS = {"SetVolume": set_volume, "VolumeUp": volume_up, "VolumeDown": volume_down, "Mute": mute}
