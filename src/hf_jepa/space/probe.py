"""What the Probe tab says beside each prediction, read from the probe's own results file (`results.json` in its
classifier folder, written by `scripts/probe.py`): what the probe was trained on, its test top-1 against chance and
the random-init and pixel baselines on the same split; and the tab's example clips: the first clips of the probe's
test split, named with their true label so a visitor can check the answers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["ProbeRecord", "example_truth", "examples_right", "probe_examples", "probe_record"]

RESULTS_FILENAME = "results.json"  # hf_jepa.probing.run.RESULTS_FILENAME (not imported: it pulls in training)
_EXAMPLE_NAME = re.compile(r"probe-example-\d+-(?P<label>[^/]+?)\.mp4$")


@dataclass
class ProbeRecord:
    """A probe's results as `scripts/probe.py` recorded them.

    Attributes:
        label_column, dataset: what it was trained on (column of that dataset).
        train_split, eval_split: the splits; `counts` their sizes.
        top1: test top-1 in [0, 1]; `chance`: {"uniform": 1 / classes, "majority": share of the test split's most
            frequent class, "majority_class": its name} (empty in results written before chance was recorded).
        baselines: name ("random", "pixels") -> test top-1 of the same probe on that baseline, same splits.
        probe: probe type; `model`: the encoder it was trained on; `label_names`: class names.
        frame_step: the step between the frames of its clips (video probes; None when not recorded): the Space reads
            uploads with it (`read_media`), so a clip is sampled as the probe saw its own.
    """

    label_column: str
    dataset: str
    top1: float
    counts: dict[str, int]
    train_split: str = "train"
    eval_split: str = "test"
    chance: dict[str, Any] = field(default_factory=dict)
    baselines: dict[str, float] = field(default_factory=dict)
    probe: str = "attentive"
    model: str = ""
    label_names: list[str] = field(default_factory=list)
    frame_step: int | None = None

    @classmethod
    def from_results(cls, results: dict[str, Any]) -> ProbeRecord:
        """From a results JSON's content (KeyError when it is not one)."""
        train_split = results.get("train_split") or results.get("settings", {}).get("train_split", "train")
        eval_split = results.get("eval_split") or results.get("settings", {}).get("eval_split", "test")
        return cls(label_column=results["label_column"], dataset=results["dataset"], top1=float(results["top1"]),
                   counts=dict(results.get("counts", {})), train_split=train_split, eval_split=eval_split,
                   chance=dict(results.get("chance") or {}),
                   baselines={k: float(v["top1"]) for k, v in (results.get("baselines") or {}).items()},
                   probe=results.get("probe", "attentive"), model=results.get("model", ""),
                   label_names=list(results.get("label_names") or []),
                   frame_step=results.get("settings", {}).get("frame_step"))

    def summary(self) -> str:
        """Markdown: 'Trained on `heading` of `data` (800 train clips) ... test top-1 **93.1%** on its 160 test clips
        (chance 12.5%, most frequent class 18.8%); same split, same probe: random-init encoder 41.2%, raw pixels
        86.2%.'"""
        n_train, n_test = self.counts.get(self.train_split), self.counts.get(self.eval_split)
        text = f"{self.probe.capitalize()} probe trained on `{self.label_column}` of `{self.dataset}`"
        text += f" ({n_train} {self.train_split} samples)" if n_train else ""
        text += f"; top-1 **{self.top1:.1%}** on its {n_test or ''} {self.eval_split} samples".replace("  ", " ")
        chance = []
        if "uniform" in self.chance:
            chance.append(f"chance {self.chance['uniform']:.1%}")
        if "majority" in self.chance:
            chance.append(f"most frequent class {self.chance['majority']:.1%}")
        text += f" ({', '.join(chance)})" if chance else ""
        names = {"random": "random-init encoder", "pixels": "raw pixels"}
        if self.baselines:
            text += "; same split, same probe: " + ", ".join(
                f"{names.get(k, k)} {v:.1%}" for k, v in self.baselines.items())
        return text + "."


def probe_record(source: str) -> ProbeRecord | None:
    """The `ProbeRecord` of a probe folder or Hub repo (its `results.json`), or None when it has none or it does not
    read (logged)."""
    from hf_jepa.space.models import model_file

    path = model_file(source, RESULTS_FILENAME)
    if path is None:
        return None
    try:
        return ProbeRecord.from_results(json.loads(Path(path).read_text()))
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("%s of %s does not read as a probe's results: %s", RESULTS_FILENAME, source, err)
        return None


def probe_examples(record: ProbeRecord, count: int = 10, out_dir: str | os.PathLike | None = None,
                   ) -> list[tuple[str, str]]:
    """The first `count` clips of the probe's test split as mp4 files named with their true label, with that label:
    [(path, "heading: up"), ...]. The test split is read (streamed, not decoded) from `record.dataset` (a local
    folder, Hub id or `builtin:` name); a video column holding bytes is expected. Files are written to `out_dir`
    (default: a folder in the temp dir) unless already there.

    Raises:
        ValueError: the split has no video column.
    """
    import datasets

    from hf_jepa.data._stream import resolve_source

    if count < 1:
        return []
    stream = datasets.load_dataset(resolve_source(record.dataset), split=record.eval_split, streaming=True)
    features = stream.features or {}
    video = next((k for k, f in features.items() if isinstance(f, datasets.Video)), "video")
    if video not in features:
        raise ValueError(f"{record.dataset} split {record.eval_split!r} has no video column; columns: "
                         f"{list(features)}")
    stream = stream.cast_column(video, datasets.Video(decode=False)).select_columns([video, record.label_column])
    label_feature = features.get(record.label_column)
    out = Path(out_dir) if out_dir is not None else Path(tempfile.gettempdir()) / "hf_jepa_space_probe_examples"
    out.mkdir(parents=True, exist_ok=True)
    clips = []
    for i, row in enumerate(stream.take(count)):
        value = row[record.label_column]
        name = label_feature.int2str(value) if isinstance(label_feature, datasets.ClassLabel) else str(value)
        path = out / f"probe-example-{i:02d}-{re.sub(r'[^A-Za-z0-9_-]', '_', name)}.mp4"
        data = row[video].get("bytes") or Path(row[video]["path"]).read_bytes()
        if not path.is_file() or path.read_bytes() != data:
            path.write_bytes(data)
        clips.append((str(path), f"{record.label_column}: {name}"))
    return clips


def example_truth(path: str | os.PathLike | None) -> str | None:
    """The true label in the name of a file `probe_examples` wrote (gradio keeps the name of an example it serves),
    else None."""
    match = _EXAMPLE_NAME.search(str(path or ""))
    return match.group("label") if match else None


def examples_right(probe_model: str, count: int = 10, out_dir: str | os.PathLike | None = None,
                   ) -> list[tuple[str, str, str]]:
    """What the Probe tab answers on its example clips, through the tab's own path (`probe_examples`, `read_media`,
    `classify`): [(clip path, true label, predicted label), ...] for the first `count` test clips of the probe at
    `probe_model` (folder or Hub id).

    Raises:
        ModelUnavailable: the probe does not load, or has no results file naming its data.
    """
    from hf_jepa.space.config import ModelUnavailable, SpaceConfig
    from hf_jepa.space.features import classify
    from hf_jepa.space.media import read_media
    from hf_jepa.space.models import load_model

    record = probe_record(probe_model)
    if record is None:
        raise ModelUnavailable(f"The probe at `{probe_model}` has no {RESULTS_FILENAME} naming its test split.")
    model = load_model(probe_model, "probe")
    config = SpaceConfig(probe_model=probe_model)
    answers = []
    for path, _ in probe_examples(record, count, out_dir):
        frames, _ = read_media(path, config, num_frames=getattr(model.config, "num_frames", 16),
                               frame_step=record.frame_step)
        answers.append((path, str(example_truth(path)), next(iter(classify(model, frames, top_k=1)))))
    return answers
