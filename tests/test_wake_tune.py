"""Choosing wake thresholds: the simulated rules, `assistant wake-tune`, and custom models refused."""

from __future__ import annotations

import io
from dataclasses import replace

import numpy as np
import pytest
import soundfile
from conftest import FIXTURES
from test_cli import assert_one_line_error, run

from assistant.config import Settings, WakeSettings
from assistant.hear.audio import read_file_audio
from assistant.hear.wake_tune import (
    Rule,
    ScoreTrace,
    detections,
    evaluate,
    recommend,
    sweep,
    tune,
)

TUNE = FIXTURES / "wake_tune"


def trace(first_pass: dict[float, float], verifier: dict[float, float], duration_s: float = 10.0) -> ScoreTrace:
    """Scores every 32 ms, zero but at the given times."""
    times = np.arange(0.032, duration_s + 1e-9, 0.032)

    def at(scores: dict[float, float]) -> np.ndarray:
        placed = np.zeros(len(times))
        for t, score in scores.items():
            placed[np.argmin(np.abs(times - t))] = score
        return placed

    return ScoreTrace(times, at(first_pass), at(verifier), duration_s, 0.0, 0.0)


def test_two_pass_wakes_when_the_verifier_agrees_within_the_candidates_window():
    rule = Rule("two_pass", 0.5, 0.5, lookback_s=0.5, hold_s=0.5)
    assert detections(trace({2.0: 0.9}, {2.3: 0.8}), rule) == ([pytest.approx(2.304, abs=0.02)], 1)
    assert detections(trace({2.0: 0.9}, {1.7: 0.8}), rule)[0]  # looked back over the primed window
    assert detections(trace({2.0: 0.9}, {3.0: 0.8}), rule) == ([], 1)  # too late: rejected
    assert detections(trace({2.0: 0.4}, {2.0: 0.9}), rule) == ([], 0)  # no candidate, no verifier call


def test_fusion_lets_a_sure_first_pass_carry_a_verifier_that_is_nearly_sure():
    rule = Rule("two_pass", 0.5, 0.5, lookback_s=0.5, hold_s=0.5)
    assert detections(trace({2.0: 0.99}, {2.2: 0.4}), rule)[0] == []
    assert detections(trace({2.0: 0.99}, {2.2: 0.4}), replace(rule, fusion=0.25))[0]
    assert detections(trace({2.0: 0.6}, {2.2: 0.4}), replace(rule, fusion=0.25))[0] == []


def test_a_narrow_miss_gives_the_next_candidate_a_second_chance():
    rule = Rule("two_pass", 0.5, 0.5, lookback_s=0.5, hold_s=0.5, second_chance_s=6.0, near=0.2, lowered=0.3)
    said_twice = trace({2.0: 0.9, 6.0: 0.9}, {2.2: 0.35, 6.2: 0.35})
    assert detections(said_twice, rule)[0] == [pytest.approx(6.208, abs=0.02)]
    assert detections(said_twice, replace(rule, second_chance_s=0.0))[0] == []
    far_apart = trace({2.0: 0.9, 9.0: 0.9}, {2.2: 0.35, 9.2: 0.35}, duration_s=12.0)
    assert detections(far_apart, rule)[0] == []


def test_no_candidate_starts_within_the_refractory_time():
    rule = Rule("first_pass_only", 0.5, 0.0, refractory_s=2.0)
    assert detections(trace({1.0: 0.9, 2.0: 0.9, 3.5: 0.9}, {}), rule)[0] == pytest.approx([1.0, 3.5], abs=0.02)


def test_false_accepts_are_counted_per_hour_of_negatives():
    negatives = [trace({5.0: 0.9}, {5.0: 0.9}, duration_s=1800.0)]
    outcome = evaluate(Rule("verifier_only", 0.0, 0.5), [trace({}, {2.0: 0.9})], negatives)
    assert (outcome.recall, outcome.false_accepts_per_hour) == (1.0, 2.0)


def test_the_recommendation_stays_within_the_false_accept_budget():
    positives = [trace({2.0: 0.3}, {2.1: 0.6}), trace({2.0: 0.9}, {2.1: 0.95})]
    negatives = [trace({5.0: 0.9}, {5.1: 0.55}, duration_s=3600.0)]
    plain = WakeSettings(fusion=0.0, second_chance_s=0.0)
    best = recommend(sweep(plain, positives, negatives), max_false_accepts_per_hour=0.5)
    assert best.false_accepts == 0 and best.found == 2
    assert best.rule.first_pass <= 0.3 and 0.55 < best.rule.verifier <= 0.6


def test_a_long_wake_tune_shows_its_progress_on_stderr_and_keeps_stdout_to_the_results(tmp_path, capsys):
    said = np.resize(read_file_audio(FIXTURES / "wake_time.wav"), 300 * 1600)
    for name, count in (("positives", 2), ("negatives", 298)):
        (tmp_path / name).mkdir()
        for n in range(count):  # many short files, each 0.1 s
            soundfile.write(tmp_path / name / f"{n:03d}.wav", said[n * 1600:(n + 1) * 1600], 16000)
    out = io.StringIO()
    assert tune(tmp_path, Settings(), out, progress_every_s=0.0) == 0
    assert capsys.readouterr().err.splitlines() == [f"wake-tune: {n} of 300 files" for n in range(1, 301)]
    assert "wake-tune:" not in out.getvalue() and "recommended (" in out.getvalue()


def test_wake_tune_prints_a_grid_and_a_recommended_pair_as_a_config_line():
    result = run("wake-tune", str(TUNE))
    assert result.returncode == 0, result.stderr
    assert "recall / false accepts per hour" in result.stdout
    assert "recommended (" in result.stdout
    assert "[wake] first_pass_threshold = " in result.stdout


@pytest.mark.parametrize("layout, needle", [(None, "no such directory"), ((), "positives"),
                                            (("positives",), "negatives")])
def test_wake_tune_names_what_a_folder_lacks(tmp_path, layout, needle):
    folder = tmp_path / "rec"
    if layout is not None:
        folder.mkdir()
        for name in layout:
            (folder / name).mkdir()
            (folder / name / "a.wav").write_bytes((FIXTURES / "wake_time.wav").read_bytes())
    assert_one_line_error(run("wake-tune", str(folder)), 2, needle)


def test_a_corrupt_model_of_an_extra_wake_word_stops_start_up_naming_the_file(tmp_path):
    (tmp_path / "bad.tflite").write_bytes(b"\x00" * 64)
    (tmp_path / "c.toml").write_text('[[wake.extra_words]]\nfirst_pass_model = "okay_nabu"\n'
                                     'verifier_model = "bad.tflite"\n')
    assert_one_line_error(run("config", "check", str(tmp_path / "c.toml")), 78, str(tmp_path / "bad.tflite"),
                          "wake.extra_words #1")


def test_a_corrupt_onnx_wake_model_stops_start_up_naming_the_file(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    (tmp_path / "c.toml").write_text('[wake]\nverifier_model = "bad.onnx"\n')
    assert_one_line_error(run("config", "check", str(tmp_path / "c.toml")), 78, str(tmp_path / "bad.onnx"))


def test_a_model_that_is_not_a_wake_head_is_refused_naming_the_file(tmp_path):
    from assistant.models import openwakeword_dir

    mel = openwakeword_dir() / "models" / "embedding_model.tflite"
    (tmp_path / "c.toml").write_text(f'[wake]\nverifier_model = "{mel}"\n')
    assert_one_line_error(run("config", "check", str(tmp_path / "c.toml")), 78, str(mel), "not an openWakeWord wake model")


def test_an_extra_wake_word_needs_both_its_models(tmp_path):
    (tmp_path / "c.toml").write_text('[[wake.extra_words]]\nfirst_pass_model = "okay_nabu"\n')
    assert_one_line_error(run("config", "check", str(tmp_path / "c.toml")), 78, "verifier_model: must be set")


def test_the_old_verifier_switch_names_its_replacement(tmp_path):
    (tmp_path / "c.toml").write_text("[wake]\nverifier_enabled = false\n")
    assert_one_line_error(run("config", "check", str(tmp_path / "c.toml")), 78, 'mode = "first_pass_only"')


def test_the_speech_gate_lets_a_half_liked_phrase_start_a_candidate_only_during_speech():
    rule = Rule("two_pass", 0.5, 0.5, lookback_s=0.5, hold_s=0.5, gate=0.05)
    quiet = trace({2.0: 0.1}, {2.2: 0.9})
    speaking = replace(quiet, vad=np.where(np.abs(quiet.times - 2.0) < 0.2, 0.9, 0.0))
    assert detections(replace(quiet, vad=np.zeros(len(quiet.times))), rule) == ([], 0)
    assert detections(speaking, rule)[0] and detections(speaking, replace(rule, gate=0.0)) == ([], 0)


def test_the_first_pass_can_be_pooled_again_from_its_raw_outputs():
    times = np.arange(0.032, 1.0, 0.032)
    raw = np.zeros(len(times))
    raw[10] = 1.0  # one confident inference among zeros
    base = ScoreTrace(times, np.zeros(len(times)), np.zeros(len(times)), 1.0, 0.0, 0.0, raw, np.arange(len(times)))
    assert base.pooled("max", 1).first_pass.max() == 1.0
    assert base.pooled("mean", 5).first_pass.max() == pytest.approx(0.2)
    assert base.pooled("mean", 20).first_pass.max() == pytest.approx(0.05)
