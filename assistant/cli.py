"""Command-line entry: argument parsing, output streams and exit statuses; no pipeline logic."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn, TextIO

from assistant import config as config_module
from assistant import models
from assistant.errors import EXIT_INTERNAL, EXIT_OK, AssistantError, DeviceError
from assistant.events import EventSink, Fanout, HumanLines, JsonLines
from assistant.hear.asr import Segment
from assistant.hear.audio import (
    NullSink,
    WavSink,
    as_stream,
    check_audio_file,
    check_output_path,
    file_chunks,
    file_duration_s,
    iter_file_audio,
)
from assistant.run.stopping import (
    Stopped,
    exit_status,
    in_daemon_thread,
    raise_stopped_on_sigterm,
    stream_in_daemon_thread,
    until_stopped,
)

log = logging.getLogger("assistant")


ECHO_DB_RANGE = (-60.0, 20.0)
"""From an echo barely above the room's noise to a speaker louder than the talker."""


class OneLineParser(argparse.ArgumentParser):
    """Wrong usage is one line on stderr, status 2, like every other error a user can cause."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def echo_gain_db(text: str) -> float:
    """`--echo`'s gain: a finite number of dB within ECHO_DB_RANGE."""
    low, high = ECHO_DB_RANGE
    try:
        gain_db = float(text)
    except ValueError:
        gain_db = math.nan
    if not low <= gain_db <= high:  # also false for nan
        raise argparse.ArgumentTypeError(f"{text!r} is not a gain in dB between {low:g} and {high:g}")
    return gain_db


def build_parser() -> argparse.ArgumentParser:
    common = OneLineParser(add_help=False)
    common.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS,
                        help="settings file (default: $ASSISTANT_CONFIG, "
                             "$CONFIGURATION_DIRECTORY/config.toml, ./config.toml, built-in)")
    common.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS,
                        help="log more to stderr (-vv for debug)")
    parser = OneLineParser(prog="assistant", parents=[common],
                                     description="An on-device voice assistant.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser("replay", parents=[common], help="run an audio file through the pipeline")
    replay.add_argument("file", type=Path, help="WAV, FLAC or OGG at any rate, width and channel count")
    replay.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    replay.add_argument("--out", type=Path, metavar="WAV", help="write the spoken replies here instead of playing")
    replay.add_argument("--ptt", action="store_true", help="the whole file is one push-to-talk turn")
    replay.add_argument("--echo", type=echo_gain_db, nargs="?", const=0.0, metavar="DB",
                        help="mix the replies into the input at their playback time, at this gain "
                             "(default 0 dB): the assistant hears itself, as from a speaker beside the microphone")

    transcribe = commands.add_parser("transcribe", parents=[common], help="transcribe a whole file")
    transcribe.add_argument("file", type=Path)
    transcribe.add_argument("--json", action="store_true", help="segments with times, one JSON object per line")

    daemon = commands.add_parser("daemon", parents=[common], help="listen on the microphone, answer aloud")
    daemon.add_argument("--json", action="store_true", help="one JSON event per line on stdout")

    ptt = commands.add_parser("ptt", parents=[common], help="push-to-talk: Enter to talk; a key during the reply stops it; q or Ctrl-C quits")
    ptt.add_argument("--json", action="store_true", help="one JSON event per line on stdout")

    audit = commands.add_parser("audit", parents=[common],
                                help="what has left the device: every cloud request and MQTT message, from the state directory")
    audit.add_argument("--json", action="store_true", help="the audit records, one JSON object per line")

    tune = commands.add_parser("wake-tune", parents=[common],
                               help="recall and false accepts per hour over a grid of wake thresholds, and the pair to use")
    tune.add_argument("folder", type=Path, metavar="DIR",
                      help="recordings: DIR/positives (each one wake phrase) and DIR/negatives (room sound without it)")
    tune.add_argument("--max-false-accepts", type=float, default=0.5, metavar="PER_HOUR",
                      help="the false accepts per hour the recommendation may cost (default 0.5)")

    serve = commands.add_parser("serve", parents=[common],
                                help="Wyoming services (asr, tts, wake, handle) for Home Assistant and satellites")
    serve.add_argument("--uri", metavar="tcp://HOST:PORT", default=None,
                       help="where to listen (default: [serve] uri, tcp://127.0.0.1:10700); "
                            "an address other than loopback is served to the network")

    config = commands.add_parser("config", parents=[common], help="settings")
    config_commands = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = config_commands.add_parser("check", parents=[common], help="validate a settings file")
    check.add_argument("file", nargs="?", type=Path, help="the file (default: the usual lookup)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Libraries print to stdout; keep the real stdout for our output only.
    sys.stdout.flush()
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    _log_to_stderr(getattr(args, "verbose", 0))
    try:
        status = _run_reporting_errors(args, out)
    finally:
        out.flush()
    return exit_status(status)


def _run_reporting_errors(args: argparse.Namespace, out: TextIO) -> int:
    """The command's exit status; an error a user can cause is one line on stderr."""
    try:
        if args.command in ("replay", "transcribe"):
            raise_stopped_on_sigterm()  # the daemon keeps SIGTERM's default until its loop runs: systemd's clean stop
        return run_command(args, out)
    except AssistantError as err:
        for line in err.message.splitlines():
            print(f"assistant: {line}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        return 130
    except Stopped as stop:
        return stop.exit_status
    except BrokenPipeError:  # whoever read stdout has gone (`| head`): end as SIGPIPE would, quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), out.fileno())
        return 128 + signal.SIGPIPE
    except Exception:  # a bug: the one case with a traceback
        logging.getLogger("assistant").exception("internal error")
        return EXIT_INTERNAL


def _log_to_stderr(verbosity: int) -> None:
    """Logs on stderr; under systemd with priority prefixes and no time (the journal adds it)."""
    from assistant.run.service import JournalFormatter, under_journald

    handler = logging.StreamHandler(sys.stderr)
    form = "%(name)s: %(message)s"
    handler.setFormatter(JournalFormatter(form) if under_journald() else logging.Formatter(form))
    logging.basicConfig(level=[logging.WARNING, logging.INFO, logging.DEBUG][min(verbosity, 2)], handlers=[handler])


def run_command(args: argparse.Namespace, out: TextIO) -> int:
    if args.command == "config":
        return config_check(args.file or config_module.find_config(getattr(args, "config", None)), out)
    settings = config_module.load_settings(config_module.find_config(getattr(args, "config", None)))
    if args.command == "replay":
        return replay(args, settings, out)
    if args.command == "transcribe":
        return transcribe(args.file, args.json, settings, out)
    if args.command == "daemon":
        return daemon(args, settings, out)
    if args.command == "ptt":
        return push_to_talk(args, settings, out)
    if args.command == "audit":
        return audit(args.json, settings, out)
    if args.command == "serve":
        return serve(args.uri, settings, out)
    if args.command == "wake-tune":
        from assistant.hear.wake_tune import tune

        return tune(args.folder, settings, out, args.max_false_accepts)
    raise AssertionError(args.command)


def config_check(path: Path | None, out: TextIO) -> int:
    settings = config_module.load_settings(path)
    models.check_all(settings)
    print(f"ok: {path if path else 'built-in defaults'}", file=out)
    return EXIT_OK


def audit(as_json: bool, settings: config_module.Settings, out: TextIO) -> int:
    from assistant.understand.audit import audit_path, human_line, read_records

    path = audit_path(settings.resolved_state_dir())
    records = read_records(path)
    if records is None:
        # With --json, stdout stays JSON only (here: nothing), so the note goes to stderr.
        print(f"nothing has left the device: there is no audit log at {path}", file=sys.stderr if as_json else out)
        return EXIT_OK
    for record in records:
        print(json.dumps(record, ensure_ascii=False) if as_json else human_line(record), file=out)
    return EXIT_OK


def replay(args: argparse.Namespace, settings: config_module.Settings, out: TextIO) -> int:
    from assistant.run.engine import (
        Engine,  # imported before the loop: a stop signal is noticed meanwhile
    )
    from assistant.run.pipeline import replay_pipeline

    check_audio_file(args.file)  # a bad file or output fails before the models load
    if args.out:
        check_output_path(args.out, source=args.file)

    lines = JsonLines(out) if args.json else HumanLines(out)
    metrics = _metrics(settings)

    async def run() -> None:
        engine = await in_daemon_thread(Engine.load, settings)
        stages = engine.stream_stages()
        sink = WavSink(args.out, stages.tts.rate_hz) if args.out else _speaker_or_nothing(settings, stages.tts.rate_hz)
        pipeline = replay_pipeline(stages, settings, _with_metrics(lines, metrics), sink, echo_db=args.echo)
        try:
            with _sessions_open(metrics):
                await pipeline.run(as_stream(file_chunks(args.file)), ptt=args.ptt)
        except asyncio.CancelledError:
            sink.close()  # stopped by a signal: what was said so far, as a whole file
            raise
        except BaseException:
            if isinstance(sink, WavSink):
                sink.abandon()  # a failure: what --out held before stays
            else:
                sink.close()
            raise
        finally:
            engine.close()
        sink.close()

    with _serving(metrics, settings):  # before the models load: a port in use stops it at once
        asyncio.run(until_stopped(run()))
    return EXIT_OK


def _metrics(settings: config_module.Settings):
    """The metrics sink when `[metrics] listen` is set, else None (prometheus-client is not even imported)."""
    if not settings.metrics.listen:
        return None
    from assistant.run.metrics import Metrics

    return Metrics()


def _with_metrics(lines: EventSink, metrics) -> EventSink:
    """The lines printed, and the metrics fed by the same events when they are on."""
    return lines if metrics is None else Fanout(lines, metrics)


def _serving(metrics, settings: config_module.Settings):
    if metrics is None:
        return contextlib.nullcontext()
    from assistant.run.metrics import serving

    return serving(metrics, settings.metrics.listen)


def _sessions_open(metrics):
    """While a replay runs, its stream counts as an open session."""
    if metrics is None:
        return contextlib.nullcontext()
    return metrics.session()


def _speaker_or_nothing(settings: config_module.Settings, rate_hz: int):
    """Replay plays its replies when there is a sound card, and still runs when there is none."""
    from assistant.hear.devices import DevicePlayer

    try:
        return DevicePlayer(settings.audio, rate_hz, must_open=True)
    except DeviceError as err:
        log.warning("%s; replies are not played (use --out FILE to keep them)", err.message)
        return NullSink()


def transcribe(path: Path, as_json: bool, settings: config_module.Settings, out: TextIO) -> int:
    from assistant.run.stages import load_asr

    check_audio_file(path)  # a bad file fails before the model loads

    async def run() -> None:
        asr = await in_daemon_thread(load_asr, settings)
        started = time.perf_counter()
        said = await _print_segments(asr.stream_segments(iter_file_audio(path)), as_json, out)
        if as_json:
            print(json.dumps({"event": "transcript", "t": round(file_duration_s(path), 3), "text": " ".join(said),
                              "asr_ms": round((time.perf_counter() - started) * 1000, 1)}), file=out)

    asyncio.run(until_stopped(run()))
    return EXIT_OK


async def _print_segments(segments: Iterator[Segment], as_json: bool, out: TextIO) -> list[str]:
    """Print each segment as it is found, as a JSON line or as more of the one line of text;
    the texts said."""
    said: list[str] = []
    try:
        # A step may decode a whole window (seconds): in a thread that a stop signal does not wait for.
        async for segment in stream_in_daemon_thread(segments):
            if as_json:
                print(json.dumps({"event": "segment", "t": round(segment.start_s, 3),
                                  "end_s": round(segment.end_s, 3), "text": segment.text}), file=out)
            elif segment.text:
                print(" " if said else "", segment.text, sep="", end="", file=out, flush=True)
            if segment.text:
                said.append(segment.text)
    finally:
        if not as_json:
            print(file=out)  # the one line ends, whole or cut short by a signal
    return said


def serve(uri: str | None, settings: config_module.Settings, out: TextIO) -> int:
    from dataclasses import replace

    from assistant.errors import UsageError
    from assistant.run.engine import Engine
    from assistant.run.serve import serve as serve_wyoming
    from assistant.run.stopping import STOP_SIGNALS, signal_queue

    serving = settings.serve if uri is None else replace(settings.serve, uri=uri)
    try:
        host, port = config_module.parse_serve_uri(serving.uri)
    except ValueError as err:
        raise UsageError(f"--uri {uri!r}: {err}") from None  # a file's uri was checked as it loaded

    metrics = _metrics(settings)

    async def run() -> None:
        signals = signal_queue({signum: signum for signum in STOP_SIGNALS})
        await serve_wyoming(lambda: in_daemon_thread(Engine.load, settings), serving, host, port, signals.get(), out,
                            metrics)

    with _serving(metrics, settings):  # before the models load: a port in use stops it at once
        asyncio.run(run())
    log.warning("stopped")
    return EXIT_OK


def push_to_talk(args: argparse.Namespace, settings: config_module.Settings, out: TextIO) -> int:
    from assistant.run import ptt

    events = JsonLines(out) if args.json else HumanLines(out)
    asyncio.run(until_stopped(ptt.push_to_talk(settings, events, sys.stdin, sys.stderr)))
    return EXIT_OK


def daemon(args: argparse.Namespace, settings: config_module.Settings, out: TextIO) -> int:
    from assistant.run.daemon import Daemon
    from assistant.run.service import ServiceNotifier

    lines = JsonLines(out) if args.json else HumanLines(out, words=settings.log_transcripts)
    metrics = _metrics(settings)
    config_path = config_module.find_config(getattr(args, "config", None))
    asyncio.run(Daemon(settings, config_path, _with_metrics(lines, metrics), ServiceNotifier(), metrics=metrics).serve())
    log.warning("stopped")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
