"""SpeechCommandsDataModule on a tiny Speech Commands v0.02 tree of real 16 kHz PCM wav files.

torchaudio's SPEECHCOMMANDS finds the clips and applies the official lists; soundfile reads them.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torchaudio

from datamodules import SpeechCommandsDataModule
from datamodules.speech import WORDS, SpeechFeatures, mix_at_snr, read_clip
from rnn_prune import keys
from rnn_prune.cli import main
from tests.conftest import quickstart_args
from tests.data_fixtures import SPEECH_LENGTHS, SPEECH_WORDS, write_speech_commands, write_speech_keywords

N_WORDS = len(SPEECH_WORDS)
N_TRAIN = N_WORDS * (len(SPEECH_LENGTHS) - 2)  # clip 0 of each word is in validation_list, clip 1 in testing_list


@pytest.fixture(scope="module")
def speech_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    """One tree for the whole module (each test uses its own ``data_dir`` copy when it caches)."""
    root = tmp_path_factory.mktemp("speech")
    return root, write_speech_commands(root)


@pytest.fixture
def speech(speech_tree: tuple[Path, dict], tmp_path: Path) -> tuple[Path, dict[str, list[str]]]:
    """A fresh ``data_dir`` (empty cache) whose ``SpeechCommands/speech_commands_v0.02`` is the tree."""
    root, splits = speech_tree
    tree = Path("SpeechCommands", "speech_commands_v0.02")
    (tmp_path / tree).parent.mkdir()
    (tmp_path / tree).symlink_to(root / tree)
    return tmp_path, splits


def _dm(root: Path, **kwargs) -> SpeechCommandsDataModule:
    return SpeechCommandsDataModule(str(root), download=False, **kwargs)


def _measured_snr(clean: torch.Tensor, noisy: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(clean.double().pow(2).sum(-1) / (noisy.double() - clean.double()).pow(2).sum(-1))


def test_batches_shapes_dtypes_and_properties(speech: tuple[Path, dict]) -> None:
    root, _ = speech
    dm = _dm(root, batch_size=4)
    assert (dm.seq_len, dm.input_size, dm.num_classes) == (101, 40, 35)
    assert dm.test_suffixes == [""]
    dm.setup("fit")
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (4, 101, 40) and x.dtype == torch.float32
    assert y.shape == (4,) and y.dtype == torch.int64
    logmel = _dm(root, batch_size=4, features="logmel", n_features=32)
    logmel.setup("validate")
    x, _ = next(iter(logmel.val_dataloader()))
    assert x.shape == (4, 101, 32) and logmel.input_size == 32


def test_labels_all_are_the_35_words_in_alphabetical_order(speech: tuple[Path, dict]) -> None:
    root, splits = speech
    dm = _dm(root)
    dm.setup("fit")
    assert dm.classes == sorted(dm.classes) and len(dm.classes) == 35 and dm.classes[1] == "bed"
    labels = dm.splits["train"].labels.tolist()
    expected = [WORDS.index(rel.split("/")[0]) for rel in sorted(splits["train"])]  # torchaudio sorts the walk
    assert labels == expected


def test_labels_kws12_map_other_words_to_unknown_and_add_silence(speech: tuple[Path, dict]) -> None:
    root, _ = speech
    dm = _dm(root, labels="kws12", silence_fraction=0.25)
    assert dm.num_classes == 12 and dm.classes[10:] == ["_unknown_", "_silence_"]
    dm.setup()
    per_word = len(SPEECH_LENGTHS) - 2
    counts = torch.bincount(dm.splits["train"].labels, minlength=12).tolist()
    # yes=0, no=1, up=2 are target words; "bed" is unknown (10); 0.25 * 12 word clips of silence (11)
    assert counts == [per_word, per_word, per_word] + [0] * 7 + [per_word, 3]
    assert len(dm.splits["val"]) == N_WORDS + 1 and len(dm.test_sets[0]) == N_WORDS + 1


def test_silence_clips_are_cuts_of_the_background_noise(speech: tuple[Path, dict]) -> None:
    root, _ = speech
    dm = _dm(root, labels="kws12", silence_fraction=0.25)
    dm._load_noise()
    sources, labels = dm._clips("train")
    silence = [s for s, y in zip(sources, labels, strict=True) if y == 11]
    assert len(silence) == 3 and all(s.startswith("_background_noise_/") for s in silence)
    name, start = silence[0].split("/", 1)[1].rsplit("@", 1)
    noise, _ = soundfile.read(dm.root / "_background_noise_" / name, dtype="int16")
    np.testing.assert_array_equal(dm._read(silence[0]), noise[int(start) : int(start) + 16000])


def test_split_sizes_follow_the_official_lists(speech: tuple[Path, dict]) -> None:
    root, splits = speech
    dm = _dm(root, batch_size=2)
    dm.setup()
    assert (len(dm.splits["train"]), len(dm.splits["val"]), len(dm.test_sets[0])) == (N_TRAIN, N_WORDS, N_WORDS)
    # The validation set holds exactly the listed clips: its features are those of the listed files.
    listed = torch.stack([torch.from_numpy(read_clip(dm.root / rel)) for rel in splits["val"]])
    expected = (SpeechFeatures()(listed.float() / 32768) - dm.mean) / dm.std
    got = torch.cat([x for x, _ in dm.val_dataloader()])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)


def test_clips_are_padded_or_cut_to_one_second(speech: tuple[Path, dict]) -> None:
    root, splits = speech
    base = root / "SpeechCommands" / "speech_commands_v0.02"
    for rel in splits["train"][:3]:
        raw, _ = soundfile.read(base / rel, dtype="int16")
        clip = read_clip(base / rel)
        assert clip.shape == (16000,) and clip.dtype == np.int16
        n = min(len(raw), 16000)
        np.testing.assert_array_equal(clip[:n], raw[:n])
        assert not clip[n:].any()
    assert {len(soundfile.read(base / rel)[0]) for rel in splits["train"]} >= {8000, 16000, 20000}


def test_wrong_sample_rate_is_reported(tmp_path: Path) -> None:
    soundfile.write(tmp_path / "clip.wav", np.zeros(8000), 8000, subtype="PCM_16")
    with pytest.raises(ValueError, match=r"clip.wav: sample rate 8000 Hz, expected 16000 Hz"):
        read_clip(tmp_path / "clip.wav")


def test_features_are_per_clip_whatever_the_batch() -> None:
    torch.manual_seed(0)
    loud, quiet = torch.randn(1, 16000) * 0.5, torch.randn(1, 16000) * 1e-4
    for kind in ("mfcc", "logmel"):
        features = SpeechFeatures(kind, 40)
        alone = features(quiet)
        assert alone.shape == (1, 101, 40)
        # torchaudio's 80 dB floor would be shared by the batch with 3-D input: here it is per clip.
        torch.testing.assert_close(features(torch.cat([loud, quiet]))[1:], alone, rtol=1e-4, atol=1e-4)


def test_features_are_standardised_with_clean_training_statistics(speech: tuple[Path, dict]) -> None:
    root, _ = speech
    dm = _dm(root, batch_size=64)
    dm.setup("fit")
    x = torch.cat([x for x, _ in dm.train_dataloader()]).reshape(-1, 40)
    torch.testing.assert_close(x.mean(0), torch.zeros(40), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std(0, unbiased=False), torch.ones(40), atol=1e-3, rtol=0)


@pytest.mark.parametrize("snr", [-5.0, 0.0, 10.0, 20.5])
def test_mix_at_snr_reaches_the_asked_snr(snr: float) -> None:
    generator = torch.Generator().manual_seed(1)
    clean = torch.randn(3, 16000, generator=generator) * torch.tensor([[0.5], [0.01], [1.0]])
    noise = torch.rand(3, 16000, generator=generator) - 0.3  # not zero-mean: power, not variance
    noisy = mix_at_snr(clean, noise, snr)
    torch.testing.assert_close(_measured_snr(clean, noisy), torch.full((3,), snr, dtype=torch.float64), atol=1e-3,
                               rtol=0)  # fmt: skip
    silent = torch.zeros(1, 16000)
    assert torch.equal(mix_at_snr(silent, noise[:1], snr), silent)


def test_training_noise_is_fresh_and_within_the_snr_range(speech: tuple[Path, dict]) -> None:
    root, _ = speech
    dm = _dm(root, batch_size=N_TRAIN, train_snr_db=(5.0, 15.0))
    dm.setup("fit")
    torch.manual_seed(0)
    waves = torch.from_numpy(np.array(dm.splits["train"].x)).float() / 32768
    mixed = dm.collate["train"].mix(waves)
    snrs = _measured_snr(waves, mixed)
    assert ((snrs > 5 - 1e-3) & (snrs < 15 + 1e-3)).all() and snrs.std() > 0.5
    x1, y1 = next(iter(dm.train_dataloader()))
    x2, y2 = next(iter(dm.train_dataloader()))
    assert x1.shape == (N_TRAIN, 101, 40) and x1.dtype == torch.float32 and torch.equal(y1, y2)
    assert not torch.allclose(x1, x2)  # same clips in the same order, new noise
    clean = _dm(root, batch_size=N_TRAIN)
    clean.setup("fit")
    x_clean, _ = next(iter(clean.train_dataloader()))
    assert (x1 - x_clean).abs().mean() > 0.05


def test_test_loaders_per_snr_are_deterministic_and_exact(speech: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = speech
    dm = _dm(root, batch_size=64, test_snrs=[20, 0])
    assert dm.test_suffixes == ["", "@20dB", "@0dB"]
    dm.setup("test")
    loaders = dm.test_dataloader()
    assert len(loaders) == 3
    clean, at20, at0 = (next(iter(loader))[0] for loader in loaders)
    assert (at0 - clean).abs().mean() > (at20 - clean).abs().mean() > 0

    # The cached 0 dB features are those of each clip mixed at exactly 0 dB with its fixed noise cut.
    sources, _ = dm._clips("test")
    waves = torch.from_numpy(np.stack([dm._read(s) for s in sources])).float() / 32768
    noisy = mix_at_snr(waves, dm._test_noise(sources), 0.0)
    torch.testing.assert_close(_measured_snr(waves, noisy), torch.zeros(len(sources), dtype=torch.float64),
                               atol=1e-3, rtol=0)  # fmt: skip
    torch.testing.assert_close(at0, (SpeechFeatures()(noisy) - dm.mean) / dm.std, rtol=1e-4, atol=1e-4)
    # A clip's noise is seeded by the clip alone, not by its neighbours or the run.
    torch.testing.assert_close(dm._test_noise(sources[1:2]), dm._test_noise(sources)[1:2])
    again = _dm(root, batch_size=64, test_snrs=[0])
    again.setup("test")
    assert again.cache_dir == dm.cache_dir
    torch.testing.assert_close(next(iter(again.test_dataloader()[1]))[0], at0)


def test_cache_second_setup_reads_no_wav_and_computes_no_feature(
    speech: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = speech
    calls = {"read": 0, "features": 0}  # clip files read (the noise recordings are re-read: 2 small files)
    real_read, real_forward = soundfile.read, SpeechFeatures.forward

    def counting_read(path, *args, **kwargs):
        calls["read"] += "_background_noise_" not in str(path)
        return real_read(path, *args, **kwargs)

    def counting_forward(self, waveform):
        calls["features"] += 1
        return real_forward(self, waveform)

    monkeypatch.setattr(soundfile, "read", counting_read)
    monkeypatch.setattr(SpeechFeatures, "forward", counting_forward)

    first = _dm(root, batch_size=4, test_snrs=[10])
    first.setup()
    assert calls["read"] >= N_TRAIN and calls["features"] > 0
    cached = sorted(p.name for p in first.cache_dir.glob("*.npy"))
    assert any(n.startswith("train-wave-") for n in cached) and any(n.startswith("test-mfcc40@10dB-") for n in cached)
    batches = [x for x, _ in first.val_dataloader()]

    calls.update(read=0, features=0)
    second = _dm(root, batch_size=4, test_snrs=[10])
    second.setup()
    for _ in range(2):  # two epochs of clean training: batches come from the cache
        for _ in second.train_dataloader():
            pass
    assert calls == {"read": 0, "features": 0}
    assert sorted(p.name for p in second.cache_dir.glob("*.npy")) == cached
    torch.testing.assert_close([x for x, _ in second.val_dataloader()], batches)

    changed = _dm(root, batch_size=4, n_features=13)  # other settings, other cache entries
    changed.setup("validate")
    assert calls["read"] == 0 and calls["features"] > 0  # the waveforms were cached already


def test_prepare_data_with_download_finds_existing_files_offline(speech: tuple[Path, dict]) -> None:
    root, _ = speech
    dm = SpeechCommandsDataModule(str(root), download=True)
    dm.prepare_data()  # torchaudio sees the folder and fetches nothing
    dm.setup("validate")
    assert len(dm.splits["val"]) == N_WORDS


def test_missing_files_say_where_and_how(tmp_path: Path) -> None:
    dm = _dm(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"Speech Commands v0.02 not found under .*speech_commands_v0.02/"
                       r"validation_list.txt.*download: true.*speech_commands_v0.02.tar.gz"):  # fmt: skip
        dm.setup("fit")


def test_missing_noise_recordings_are_reported(tmp_path: Path) -> None:
    write_speech_commands(tmp_path, words=("yes", "cat"))
    base = tmp_path / "SpeechCommands" / "speech_commands_v0.02" / "_background_noise_"
    for path in base.iterdir():
        path.unlink()
    _dm(tmp_path).setup("validate")  # labels="all" without noise needs no recordings
    with pytest.raises(FileNotFoundError, match=r"no _background_noise_/\*.wav under .*labels='kws12'"):
        _dm(tmp_path, labels="kws12").setup("fit")


def test_folder_outside_the_35_words_is_an_error_for_labels_all(tmp_path: Path) -> None:
    write_speech_commands(tmp_path, words=("yes", "hello"))
    with pytest.raises(ValueError, match=r"folder 'hello' is not one of the 35 .* labels='kws12'"):
        _dm(tmp_path).setup("fit")
    kws = _dm(tmp_path, labels="kws12", silence_fraction=0.0)
    kws.setup("fit")
    assert set(kws.splits["train"].labels.tolist()) == {0, 10}  # yes, and hello as _unknown_


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, r"batch_size=0 must be positive"),
        ({"num_workers": -3}, r"num_workers=-3 must be >= 0"),
        ({"labels": "kws10"}, r"labels='kws10' is not one of \['all', 'kws12'\]"),
        ({"features": "mel"}, r"features='mel' is not one of \['mfcc', 'logmel'\]"),
        ({"n_features": 0}, r"n_features=0 must be positive"),
        ({"silence_fraction": -0.1}, r"silence_fraction=-0.1 must be a finite number >= 0"),
        ({"silence_fraction": math.nan}, r"silence_fraction=nan must be a finite number >= 0"),
        ({"train_snr_db": (20, 5)}, r"train_snr_db=\(20.0, 5.0\) must be \(low, high\) with low <= high"),
        ({"train_snr_db": (0, 5, 10)}, r"train_snr_db=\(0.0, 5.0, 10.0\) must be two finite dB values"),
        ({"train_snr_db": (0, math.inf)}, r"train_snr_db=\(0.0, inf\) must be two finite dB values"),
        ({"test_snrs": [10, math.nan]}, r"test_snrs=\[10.0, nan\] must be finite dB values"),
        ({"test_snrs": [10, 0, 10]}, r"test_snrs=\[10.0, 0.0, 10.0\] repeats an SNR"),
        ({"seed": -1}, r"seed=-1 must be >= 0"),
    ],
)
def test_bad_arguments_name_the_value(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SpeechCommandsDataModule(**kwargs)


def test_speech_features_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match=r"features='spectrogram' is not one of"):
        SpeechFeatures("spectrogram")
    with pytest.raises(ValueError, match=r"n_features=-1 must be positive"):
        SpeechFeatures("mfcc", -1)


def test_noise_recording_with_wrong_sample_rate_is_reported(tmp_path: Path) -> None:
    write_speech_commands(tmp_path, words=("yes",))
    noise = tmp_path / "SpeechCommands" / "speech_commands_v0.02" / "_background_noise_" / "hum.wav"
    soundfile.write(noise, np.zeros(24000), 8000, subtype="PCM_16")
    with pytest.raises(ValueError, match=r"hum.wav: sample rate 8000 Hz, expected 16000 Hz"):
        _dm(tmp_path, test_snrs=[10]).setup("test")


def test_empty_split_is_reported(tmp_path: Path) -> None:
    write_speech_commands(tmp_path, words=("yes",))
    (tmp_path / "SpeechCommands" / "speech_commands_v0.02" / "validation_list.txt").write_text("")
    with pytest.raises(RuntimeError, match=r"the val split of .*speech_commands_v0.02 holds no clips"):
        _dm(tmp_path).setup("validate")


def test_test_snrs_db_name_the_snr_of_each_test_loader(speech: tuple[Path, dict]) -> None:
    root, _ = speech
    dm = _dm(root, test_snrs=[20, 2.5, -5])
    assert dm.test_suffixes == ["", "@20dB", "@2.5dB", "@-5dB"]
    assert dm.test_snrs_db == [None, 20.0, 2.5, -5.0]
    by_key = {keys.test_acc(s): snr for s, snr in zip(dm.test_suffixes, dm.test_snrs_db, strict=True)}
    assert by_key == {"test/acc": None, "test/acc@20dB": 20.0, "test/acc@2.5dB": 2.5, "test/acc@-5dB": -5.0}


def test_mixing_is_torchaudios_add_noise(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = torchaudio.functional.add_noise

    def spy(waveform, noise, snr, lengths=None):
        calls.append(tuple(snr.shape))
        return real(waveform, noise, snr, lengths)

    monkeypatch.setattr(torchaudio.functional, "add_noise", spy)
    clean, noise = torch.randn(3, 100), torch.randn(3, 100)
    mix_at_snr(clean, noise, 10.0)
    assert calls == [(3,)]  # one SNR broadcast to every signal


def test_silent_noise_cut_leaves_the_clip_unchanged() -> None:
    clean = torch.randn(2, 100)
    noise = torch.stack([torch.zeros(100), torch.randn(100)])  # add_noise alone gives NaN for row 0
    mixed = mix_at_snr(clean, noise, 0.0)
    assert torch.equal(mixed[0], clean[0]) and torch.isfinite(mixed).all()
    assert not torch.equal(mixed[1], clean[1])


def test_listed_clip_missing_on_disk_is_named(tmp_path: Path) -> None:
    splits = write_speech_commands(tmp_path, words=("yes", "no"))
    base = tmp_path / "SpeechCommands" / "speech_commands_v0.02"
    (base / splits["test"][1]).unlink()
    _dm(tmp_path).setup("validate")  # the validation list is intact
    missing = re.escape(splits["test"][1])
    with pytest.raises(FileNotFoundError, match=rf"testing_list.txt lists 1 clip\(s\) missing under .*: {missing}\."):
        _dm(tmp_path).setup("test")


def test_stereo_clip_is_mixed_down_with_a_warning(tmp_path: Path) -> None:
    left, right = np.full(16000, 0.5), np.full(16000, -0.25)
    soundfile.write(tmp_path / "stereo.wav", np.stack([left, right], axis=1), 16000, subtype="PCM_16")
    with pytest.warns(UserWarning, match=r"stereo.wav: 2 channels, Speech Commands is mono; mixing them down"):
        clip = read_clip(tmp_path / "stereo.wav")
    assert clip.shape == (16000,) and abs(int(clip[0]) - round(0.125 * 32768)) <= 1  # the mean, not channel 0


def test_unreadable_clip_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF....not a wav file")
    with pytest.raises(OSError, match=r"broken.wav: cannot read this wav file"):
        read_clip(tmp_path / "broken.wav")


def test_prepare_data_fills_the_cache_so_setup_reads_nothing(
    speech: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lightning runs prepare_data on one process per node: every rank's setup then only maps files."""
    root, _ = speech
    _dm(root, test_snrs=[10]).prepare_data()
    names = {p.name.rsplit("-", 1)[0] for p in (root / "SpeechCommands" / "cache").glob("*.npy")}
    assert names == {"train-wave", "train-mfcc40", "train-stats", "val-wave", "val-mfcc40", "test-wave",
                     "test-mfcc40", "test-mfcc40@10dB"}  # fmt: skip

    def fail(*args, **kwargs):
        raise AssertionError("setup recomputed a cached array")

    monkeypatch.setattr(SpeechFeatures, "forward", fail)
    monkeypatch.setattr("datamodules.speech.datamodule.read_clip", fail)
    dm = _dm(root, test_snrs=[10])
    dm.setup()
    assert len(dm.test_sets) == 2 and len(dm.splits["train"]) == N_TRAIN


def test_prepare_data_removes_stale_temporaries_of_a_killed_fill(speech: tuple[Path, dict]) -> None:
    root, _ = speech
    cache = root / "SpeechCommands" / "cache"
    cache.mkdir(parents=True)
    dead = 2**22  # above every pid Linux (at most 2**22 - 1) or macOS hands out: like a fill killed with kill -9
    stale = cache / f"train-wave-0123456789abcdef.tmp{dead}.npy"
    live = cache / f"train-wave-0123456789abcdef.tmp{os.getppid()}.npy"  # another run filling now
    stale.write_bytes(b"half a cache file")
    live.write_bytes(b"being written")
    _dm(root).prepare_data()
    assert not stale.exists() and live.exists()
    assert not list(cache.glob(f"*.tmp{os.getpid()}.npy"))  # this fill renamed its own temporaries


def test_splits_follow_the_official_lists_and_share_no_speaker(tmp_path: Path) -> None:
    """The data module's splits are the tree's ``validation_list.txt`` / ``testing_list.txt`` and
    every other clip, each word labelled by its folder: so speakers held out by the lists stay out
    of training (the fixture holds out whole speakers, and writes silence-padded words at random
    offsets over a noise floor)."""
    words = ("yes", "no", "cat")
    written = write_speech_keywords(tmp_path, words=words, speakers=6, clips_per_speaker=1, held_out_speakers=1)
    dm = _dm(tmp_path, labels="all")
    found = {}
    for split in ("train", "val", "test"):
        sources, labels = dm._clips(split)
        found[split] = sorted(sources)
        assert [dm.classes[label] for label in labels] == [rel.split("/")[0] for rel in sources]
    assert found == {split: sorted(rels) for split, rels in written.items()}
    speakers = {split: {rel.split("/")[1].split("_")[0] for rel in rels} for split, rels in found.items()}
    assert [len(speakers[s]) for s in ("train", "val", "test")] == [4, 1, 1]
    assert not speakers["val"] & speakers["train"] and not speakers["test"] & speakers["train"]


def test_kws12_config_runs_a_batch_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_speech_keywords(data, words=("yes", "no", "cat"), speakers=3, clips_per_speaker=1, held_out_speakers=1)
    cli = main(_cli_args("speech_kws12_lstm", data, tmp_path, "--trainer.fast_dev_run", "1"))
    assert cli.trainer.state.finished and cli.model.hparams.num_classes == 12
    assert cli.datamodule.classes[10:] == ["_unknown_", "_silence_"] and cli.model.net.readout == "max"


def _cli_args(config: str, data: Path, tmp_path: Path, *extra: str) -> list[str]:
    """``fit`` of a shipped config on ``data`` with no logger and no workers, outputs in ``tmp_path``."""
    data_args = ("--data.init_args.data_dir", str(data), "--data.init_args.download", "false",
                 "--data.init_args.num_workers", "0")  # fmt: skip
    return quickstart_args(
        "fit", tmp_path / "runs", "--trainer.logger", "false", *data_args, *extra, config=f"{config}.yaml"
    )


@pytest.mark.slow
@pytest.mark.parametrize("config", ["speech_lstm", "speech_rnn"])
def test_speech_config_learns_short_words_at_random_offsets(config: str, tmp_path: Path) -> None:
    """The shipped config, with only data-size overrides, learns 10 keywords well above chance (0.1).

    160 training clips of 8 speakers, batch 16, 10 epochs: 100 Adam steps (about 15-30 s of CPU
    each). With the last-step readout both configs stay near chance on this set.
    """
    data = tmp_path / "data"
    write_speech_keywords(data)
    cli = main(_cli_args(config, data, tmp_path, "--data.init_args.batch_size", "16", "--trainer.max_epochs", "10"))
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    accuracy = float(cli.trainer.callback_metrics[keys.test_acc()])
    assert accuracy >= 0.6, f"{config}: test accuracy {accuracy:.3f} on 10 keywords (chance 0.1)"
