"""The zero-shot default on real scenes: every shared real recording with shared photos.

Each recording (assets real_sounds/*) is paired with photos where its source class
is visible and photos where it is not. Every 1 s window (stride 1 s, as `avs
segment`) is judged at class level:

  H  hit: the source's class is among the chosen labels and the mask is not empty,
     and nothing else is masked
  X  hit, but another class is masked as well
  N  honest miss: empty mask, heard_not_visible names the sound (an AudioSet class
     in the subtree of one of the pair's sound names, ontology-checked; for the
     instruments plain "Music" counts, as that is often all the tagger says)
  E  empty mask, the sound not named (heard nothing, or named something else)
  W  wrong: only other objects masked
  S  the recording is silent here (its level is 30 dB or more below the clip's loudest
     window: the clip's tail); not judged

Visible pairs want H; not-visible pairs want N. The truth is per recording (the
source is assumed audible in every window but the silent ones), so quiet windows
that are not silent count against us. Each window carries the audio before it that
the pipeline asks for (``AVSPipeline.audio_span_s``: the tagger's context), as far
as the recording goes back, as ``avs segment`` does.

Switches: two recordings back to back, the photo showing the first one's source
only. A tagger context longer than the window keeps a sound that has stopped
audible a little longer; the table counts the windows after the switch that still
mask the first source, and (second recording first) the windows after the switch
before its source is masked.
Usage: python bench/bench_real_scenes.py [--json out.json] [--variants default tagger_context_s=1 aggregate=max ...]
"""
from __future__ import annotations

import argparse
import json
from collections import Counter

import numpy as np

from avs_core import assets
from avs_core.audio.frontend import level_dbfs, read_audio, resample, to_mono_float
from avs_core.image import read_image
from avs_core.media import iter_windows
from avs_core.ontology import Ontology
from avs_core.pipeline import AVSPipeline
from avs_core.types import Window

# recording -> (accepted sound names (ontology subtrees), visible concept(s), photos with it, photos without it)
PAIRS = {
    "dog_bark_esc10_2-117271-A.ogg": (["Dog"], "dog", ["pets", "dog_segmentation"], ["cat"]),
    "dog_bark_esc10_3-155312-A.ogg": (["Dog"], "dog", ["yolox_dog"], ["grace_hopper"]),
    "cat_meow_antum.flac": (["Cat"], "cat", ["cat"], ["pets"]),
    "bird_antum_02.flac": (["Bird"], "bird", ["owl"], ["traffic_0001"]),
    "bird_berklee_4.mp3": (["Bird"], "bird", ["parrot"], ["grace_hopper"]),
    "rooster_esc10_3-154957-A.ogg": (["Fowl"], "bird", ["bird_segmentation"], ["pets"]),
    "car_engine_antum.flac": (["Vehicle", "Engine"], "car", ["traffic_0002"], ["grace_hopper"]),
    "car_horn_berklee_1.mp3": (["Vehicle", "Vehicle horn, car horn, honking"], "car", ["traffic_0001"], ["cat"]),
    "siren_police_berklee_2.mp3": (["Siren", "Emergency vehicle"], "car|truck", ["traffic_0003"], ["owl"]),
    "crying_baby_esc10_3-152007-B.ogg": (["Crying, sobbing"], "person", ["grace_hopper"], ["traffic_0002"]),
    "laughter_berklee_1.mp3": (["Laughter", "Speech"], "person", ["grace_hopper"], ["parrot"]),
    "clap_berklee_1.mp3": (["Hands"], "person", ["grace_hopper"], ["cat"]),
    "cow_antum_01.flac": (["Cattle, bovinae"], None, [], ["pets"]),
    "sheep_antum_baa.flac": (["Sheep"], None, [], ["traffic_0003"]),
    "horse_berklee_1.mp3": (["Horse"], None, [], ["grace_hopper"]),
    "train_horn_opensfx_10.wav": (["Rail transport", "Vehicle horn, car horn, honking"], None, [], ["traffic_0001"]),
    "airplane_jet_opensfx_09.wav": (["Aircraft", "Vehicle"], None, [], ["traffic_0002"]),
    "helicopter_esc10_2-37806-C.ogg": (["Aircraft", "Vehicle"], None, [], ["traffic_0003"]),
    "chainsaw_esc10_3-118972-B.ogg": (["Tools", "Chainsaw"], None, [], ["grace_hopper"]),
    "church_bells_antum_01.flac": (["Bell", "Change ringing (campanology)"], None, [], ["traffic_0001"]),
    "clock_tick_esc10_3-142593-A.ogg": (["Clock"], None, [], ["grace_hopper"]),
    "toilet_flush_berklee.mp3": (["Toilet flush", "Water"], None, [], ["grace_hopper"]),
    "guitar_chord_berklee_1.mp3": (["Guitar", "Musical instrument", "Music"], None, [], ["grace_hopper"]),
    "piano_chord_berklee.mp3": (["Keyboard (musical)", "Musical instrument", "Music"], None, [], ["grace_hopper"]),
    "violin_berklee_bounce1.mp3": (["Bowed string instrument", "Musical instrument", "Music"], None, [], ["grace_hopper"]),
    "snare_drum_berklee_brush1.mp3": (["Drum", "Musical instrument", "Music"], None, [], ["grace_hopper"]),
    "trumpet_librosa_sorohanro.ogg": (["Brass instrument", "Musical instrument", "Music"], None, [], ["grace_hopper"]),
}

# (first recording, second recording, photo showing the first one's source only, that source's concept)
SWITCHES = [
    ("dog_bark_esc10_2-117271-A.ogg", "helicopter_esc10_2-37806-C.ogg", "pets", "dog"),
    ("crying_baby_esc10_3-152007-B.ogg", "guitar_chord_berklee_1.mp3", "grace_hopper", "person"),
    ("dog_bark_esc10_3-155312-A.ogg", "church_bells_antum_01.flac", "yolox_dog", "dog"),
]
SWITCH_AT_S = 4  # seconds of each recording before the switch (all of them last at least this long)

# Bridge concept of the recordings no photo shows (for the audio-only concept scores).
UNSEEN_CONCEPT = {"cow_antum_01.flac": "cow", "sheep_antum_baa.flac": "sheep", "horse_berklee_1.mp3": "horse",
                  "train_horn_opensfx_10.wav": "train", "airplane_jet_opensfx_09.wav": "aeroplane",
                  "clock_tick_esc10_3-142593-A.ogg": "clock", "toilet_flush_berklee.mp3": "toilet"}


def concept_scores(pipe: AVSPipeline) -> tuple[int, int, int]:
    """Audio only, with the pipeline's current settings: (true concept heard, windows with a true concept,
    other concepts heard) over every window of every recording, at pipeline.audio_threshold."""
    from avs_core.sound_sources import calibrate

    seg, thr = pipe.segmenter, float(pipe.cfg["audio_threshold"])
    hits = windows = false = 0
    for clip, (_, source, *_rest) in PAIRS.items():
        truth = set((source or UNSEEN_CONCEPT.get(clip, "")).split("|")) - {""}
        for w in recording_windows(pipe, "cat", clip):
            # What the pipeline's tagger hears: the window's audio, up to audio_span_s.
            e = calibrate(seg.tagger.tag(w.audio, w.sample_rate).probs, seg.bridge.evidence_floor)
            heard = {c.name for c in seg.bridge.concepts
                     if seg.bridge.score(e, c.audio_indices) >= (c.threshold if c.threshold is not None else thr)}
            hits, windows, false = hits + bool(heard & truth), windows + bool(truth), false + len(heard - truth)
    return hits, windows, false


def recording_windows(pipe: AVSPipeline, photo: str, clip: str) -> list[Window]:
    return list(iter_windows(assets.resolve(photo), assets.resolve(f"real_sounds/{clip}"), 1.0, 1.0,
                             span_s=pipe.audio_span_s))


def judge(res, source: str | None, named_ok: set[str]) -> str:
    chosen = {name for name, _ in res.labels} if res.mask.any() else set()
    wanted = set(source.split("|")) if source else set()
    if chosen:
        if chosen & wanted:
            return "H" if chosen <= wanted else "X"
        return "W"
    return "N" if set(getattr(res, "heard_not_visible", [])) & named_ok else "E"


# A window this far below the clip's loudest one holds none of its sound (the recording's tail).
SILENT_BELOW_PEAK_DB = 30.0


def run(pipe: AVSPipeline, onto: Ontology) -> list[dict]:
    rows = []
    for clip, (sounds, source, visible, hidden) in PAIRS.items():
        named_ok = {n for s in sounds for n in onto.subtree(s)}
        for photo, vis in [(p, True) for p in visible] + [(p, False) for p in hidden]:
            windows = recording_windows(pipe, photo, clip)
            levels = [level_dbfs(w.audio[-w.sample_rate:]) for w in windows]  # the 1 s window, not its context
            marks, details, foreign = "", [], 0
            for w, level in zip(windows, levels):
                res = pipe(w)
                silent = level < max(levels) - SILENT_BELOW_PEAK_DB
                marks += "S" if silent else judge(res, source if vis else None, named_ok)
                # Names of sounds the recording does not hold (the tagger's confusions).
                foreign += not silent and bool(set(getattr(res, "heard_not_visible", [])) - named_ok)
                details.append({"labels": [[n, round(s, 3)] for n, s in res.labels],
                                "heard_not_visible": list(getattr(res, "heard_not_visible", [])),
                                "tags": [[n, round(s, 3)] for n, s in res.info.get("audio_tags", [])[:3]]})
            rows.append({"clip": clip, "photo": photo, "visible": vis, "windows": marks, "details": details,
                         "foreign_names": foreign})
    return rows


def mono_16k(clip: str, seconds: float) -> np.ndarray:
    raw, sr = read_audio(assets.resolve(f"real_sounds/{clip}"))
    return resample(to_mono_float(raw, sr), sr, 16000)[: int(seconds * 16000)]


def switches(pipe: AVSPipeline) -> list[dict]:
    """Per switch: windows after it that still mask the first source (lag), and in reverse order the
    windows after it before the source is masked (onset), with the mask strings (M masked, . not)."""
    out = []
    for first, second, photo, source in SWITCHES:
        frame = read_image(assets.resolve(photo))
        row = {"switch": f"{first} -> {second}", "photo": photo}
        for name, order in (("lag", (first, second)), ("onset", (second, first))):
            audio = np.concatenate([mono_16k(c, SWITCH_AT_S) for c in order])
            marks = ""
            for t_end in range(1, 2 * SWITCH_AT_S + 1):
                # Everything up to the frame: the pipeline keeps the last audio_span_s of it.
                res = pipe(Window(frame, audio[: t_end * 16000], 16000, t_end - 1.0, float(t_end)))
                marks += "M" if res.mask.any() and source in {n for n, _ in res.labels} else "."
            after = marks[SWITCH_AT_S:]
            row[name] = len(after) - len(after.lstrip("M")) if name == "lag" else len(after) - len(after.lstrip("."))
            row[f"{name}_marks"] = marks
        out.append(row)
    return out


def table(rows: list[dict]) -> str:
    lines = ["| recording | photo | source visible | windows | verdict |", "|---|---|---|---|---|"]
    for r in rows:
        want = "H" if r["visible"] else "N"
        c = Counter(r["windows"])
        judged = len(r["windows"]) - c["S"]
        verdict = "wrong" if c["W"] else ("ok" if c[want] * 2 >= judged else "weak")
        lines.append(f"| {r['clip']} | {r['photo']} | {'yes' if r['visible'] else 'no'} | {r['windows']} | {verdict} |")
    return "\n".join(lines)


def totals(rows: list[dict]) -> dict[str, Counter]:
    out = {"visible": Counter(), "not visible": Counter()}
    for r in rows:
        out["visible" if r["visible"] else "not visible"].update(r["windows"])
        out["visible" if r["visible"] else "not visible"]["foreign"] += r["foreign_names"]
    return out


BRIDGE_KEYS = ("aggregate", "evidence_floor", "generic_descend")


def apply(pipe: AVSPipeline, settings: dict) -> None:
    for key in BRIDGE_KEYS:
        setattr(pipe.segmenter.bridge, key, settings[key])
    pipe.update(tagger_context_s=settings["tagger_context_s"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write every window's outcome, labels and heard_not_visible here")
    ap.add_argument("--variants", nargs="+", default=["default"],
                    help="bridge settings compared side by side, e.g. default aggregate=max evidence_floor=0.02 "
                         "generic_descend=0.5 (comma-separated for several)")
    args = ap.parse_args()
    onto = Ontology.load()
    pipe = AVSPipeline.from_config({"device": "cpu"})
    bridge = pipe.segmenter.bridge
    defaults = {k: getattr(bridge, k) for k in BRIDGE_KEYS} | {"tagger_context_s": pipe.cfg["tagger_context_s"]}
    variants = {}
    for variant in args.variants:
        settings = dict(defaults)
        for item in filter(None, variant.replace("default", "").split(",")):
            key, value = item.split("=")
            settings[key] = value if key == "aggregate" else float(value)
        variants[variant] = settings
    results, switch_rows, concepts = {}, {}, {}
    for variant, settings in variants.items():
        apply(pipe, settings)
        concepts[variant] = concept_scores(pipe)
        rows = run(pipe, onto)
        results[variant], switch_rows[variant] = rows, switches(pipe)
        print(f"\n## {variant}: {settings}\n")
        print(table(rows))
    print("\nconcepts heard from the audio alone (true concept heard / windows with one; other concepts heard)")
    for name, (hits, windows, false) in concepts.items():
        print(f"{name:28s} {hits:3d} / {windows:3d}   false {false:3d}")
    print(f"\nswitches after {SWITCH_AT_S} s (M first source masked; lag: windows after the switch still masking it; "
          "onset: second recording first, windows after the switch before it is masked)")
    for name, rows in switch_rows.items():
        for r in rows:
            print(f"{name:28s} {r['switch']:62s} {r['photo']:13s} lag {r['lag']} {r['lag_marks']}  "
                  f"onset {r['onset']} {r['onset_marks']}")
    print("\nwindows per outcome (H hit, X hit+extra, N honest miss, E empty unnamed, W wrong; S silent, not judged)")
    for name, rows in results.items():
        for kind, c in totals(rows).items():
            print(f"{name:28s} {kind:12s} " + "  ".join(f"{k}={c[k]:3d}" for k in "HXNEW")
                  + f"  of {sum(c[k] for k in 'HXNEW')}  (S={c['S']}; windows naming a sound not in the clip: {c['foreign']})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"scenes": results, "switches": switch_rows}, fh, indent=1)


if __name__ == "__main__":
    main()
