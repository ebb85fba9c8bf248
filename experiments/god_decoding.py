"""Horikawa & Kamitani's feature decoding on the Generic Object Decoding fMRI, for any model.

    python -m experiments.god_decoding --bdata_dir=/data/god --stimuli_csv=/data/god/images.csv \
        --images_dir=/data/god/images --model=alexnet_caffe=/weights/caffenet.pt \
        --layers=conv1,conv2,conv3,conv4,conv5,fc6,fc7,fc8 \
        --published_dir=/data/god/decoded_features --published_net=AlexNet \
        --output_dir=runs/god_alexnet

Reads the five subjects' ``Subject{N}.h5`` (BData, through bdpy: ``--roi`` voxels, training
and perception-test samples, test repetitions averaged), the user's copy of the images
(``--stimuli_csv``: ``stimulus_id`` = ImageNet id such as ``n01443537_22563``, ``filename``;
the GOD images are not public), extracts the layers unreduced, decodes ``--units`` sampled
units per layer from each subject's voxels in the papers' protocol
(``Horikawa2017.decoding``), and writes ``decoding.json`` (per-unit accuracies, rankings,
identification, consistency, the alpha chosen), ``accuracy.csv``, the study's figures and,
with ``--published_dir``, ``published_comparison.csv`` beside the published accuracies.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags

from jaxbrain.analysis.decoding import (
    accuracy_table,
    compare_with_published,
    decoding_figures,
    read_published,
)
from jaxbrain.benchmarks.registry import load
from jaxbrain.engine.inputs import load_stimuli, resolve_model
from jaxbrain.features import PlacedStimuli, extract, model_preprocessing
from jaxbrain.files import atomic_write, json_bytes


def run(*, bdata_dir, stimuli_csv, images_dir, model: str, layers, output_dir,
        roi: str = "ROI_VC", n_voxels: int = 1000, units: int = 1000, seed: int = 0,
        published_dir: str = "", published_net: str = "AlexNet", batch_size: int = 32) -> dict:
    """Decode, write the outputs (see the module docstring) and return the decoding result."""
    benchmark = load("Horikawa2017.decoding").with_data(fmri=bdata_dir).with_overrides(
        roi=roi, n_voxels=n_voxels, units=units, seed=seed, stimuli_csv=str(stimuli_csv),
        images_dir=str(images_dir))
    prepared = benchmark.prepare()
    csv, folder, degrees = benchmark.stimulus_source(prepared)
    stimuli = load_stimuli(csv, folder, degrees)
    benchmark.check_stimuli(prepared, stimuli.ids)
    network = resolve_model(model)
    images = PlacedStimuli(stimuli.images, model_preprocessing(network, degrees),
                           stimuli.digest)
    bank = extract(network, images, list(stimuli.ids), taps=list(layers), reduction="none",
                   batch_size=batch_size, model_name=model)
    result = benchmark.decode(prepared, bank.layers, stimuli.ids)
    result.update(model=model, roi=roi, bdata_dir=str(bdata_dir), subjects=list(
        prepared.subjects), units_per_layer=units)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "decoding.json", json_bytes(result, indent=1))
    atomic_write(out / "accuracy.csv", accuracy_table(result).to_csv(index=False).encode())
    comparison = None
    if published_dir:
        comparison = compare_with_published(result, read_published(published_dir,
                                                                    published_net))
        atomic_write(out / "published_comparison.csv",
                     comparison.to_csv(index=False).encode())
    decoding_figures(result, out, comparison)
    return result


FLAGS = flags.FLAGS
flags.DEFINE_string("bdata_dir", None, "Folder of the subjects' Subject{N}.h5 (BData).")
flags.DEFINE_string("stimuli_csv", None, "Table of the images: stimulus_id, filename.")
flags.DEFINE_string("images_dir", None, "Folder of the images the table names.")
flags.DEFINE_string("model", "alexnet_caffe=IMAGENET1K_V1", "Model reference (as sweeps take).")
flags.DEFINE_list("layers", ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7", "fc8"],
                  "Layer taps to decode (the paper's AlexNet: conv1 ... fc8).")
flags.DEFINE_string("roi", "ROI_VC", "Voxels: a BData ROI flag (ROI_V1 ... ROI_VC).")
flags.DEFINE_integer("n_voxels", 1000, "Voxels per unit (the papers: 1000 for VC, LVC, HVC; "
                     "500 for single areas); 0: all.")
flags.DEFINE_integer("units", 1000, "Units decoded per layer (a seeded sample).")
flags.DEFINE_string("published_dir", "", "Folder of accuracy-<net>-<layer>-<subject>.mat.")
flags.DEFINE_string("published_net", "AlexNet", "The <net> of the published files.")
flags.DEFINE_string("output_dir", None, "Where the results and figures go.")
flags.mark_flags_as_required(["bdata_dir", "stimuli_csv", "images_dir", "output_dir"])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    result = run(bdata_dir=FLAGS.bdata_dir, stimuli_csv=FLAGS.stimuli_csv,
                 images_dir=FLAGS.images_dir, model=FLAGS.model, layers=FLAGS.layers,
                 output_dir=FLAGS.output_dir, roi=FLAGS.roi, n_voxels=FLAGS.n_voxels,
                 units=FLAGS.units, published_dir=FLAGS.published_dir,
                 published_net=FLAGS.published_net)
    print(json.dumps({layer: {s: round(r["mean_accuracy"], 4)
                              for s, r in entry["subjects"].items()}
                      for layer, entry in result["layers"].items()}, indent=1))


if __name__ == "__main__":
    app.run(main)
