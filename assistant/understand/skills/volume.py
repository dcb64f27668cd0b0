"""The speaker's loudness: set, up or down by a little or a lot, half, full, mute and unmute.
A change is heard at once, this reply included."""

from __future__ import annotations

from assistant.understand.skills import SkillRequest, VolumeControl

STEP = 0.1
"""A plain "louder"; "a little" is the same, "a lot" three times it."""
UNMUTED = 0.5
"""The level "unmute" gives when the level before the mute is not known."""


def set_volume(request: SkillRequest) -> str:
    return _set(request, request.slots["percent"] / 100)


def volume_up(request: SkillRequest) -> str:
    control = _control(request)
    if control.volume >= 1.0:
        return "The volume is already at its loudest."
    return _set(request, _unmuted(control) + STEP * request.slots.get("steps", 1))


def volume_down(request: SkillRequest) -> str:
    control = _control(request)
    if control.volume <= 0.0:
        return ""  # muted: nobody would hear it
    return _set(request, control.volume - STEP * request.slots.get("steps", 1), floor=STEP / 2)


def mute(request: SkillRequest) -> str:
    control = _control(request)
    if control.volume > 0:
        control.volume_before_mute = control.volume
    control.volume = 0.0
    return ""  # nobody would hear it


def unmute(request: SkillRequest) -> str:
    control = _control(request)
    if control.volume > 0:
        return f"I'm not muted. The volume is {round(control.volume * 100)} percent."
    return _set(request, _unmuted(control))


def _unmuted(control: VolumeControl) -> float:
    """The level to go on from: the current one, or the one before a mute."""
    if control.volume > 0:
        return control.volume
    return control.volume_before_mute or UNMUTED


def _set(request: SkillRequest, level: float, floor: float = 0.0) -> str:
    """Set the level (a step down stops at `floor`, so "quieter" never mutes) and say it."""
    control = _control(request)
    control.volume = min(max(round(level, 2), floor, 0.0), 1.0)
    control.volume_before_mute = None
    if control.volume == 0.0:
        return ""
    return f"Volume {round(control.volume * 100)} percent."


def _control(request: SkillRequest) -> VolumeControl:
    assert request.volume is not None, "the volume skill needs the player"
    return request.volume


ABILITY = "change the volume"
RANK = 50
INTENTS = {"SetVolume": set_volume, "VolumeUp": volume_up, "VolumeDown": volume_down, "Mute": mute,
           "Unmute": unmute}
