from pathlib import Path

from toolferry.domain.task import Executor, FileType, Input, Output, TaskSpec
from toolferry.worker.layout import Layout


def test_mounts_cover_volumes_outputs_logs_and_inputs(tmp_path: Path) -> None:
    spec = TaskSpec(
        executors=(Executor(image="i", command=("x",), stdout="/logs/out.txt"),),
        inputs=(
            Input(path="/in/a.txt", content="a"),
            Input(path="/data/ref", url="file:///r", type=FileType.DIRECTORY),
            Input(path="/vol/inside.txt", content="b"),
        ),
        outputs=(
            Output(path="/out/result.txt", url="file:///o"),
            Output(path="/out/sub/deep.txt", url="file:///o2"),
            Output(path="/results/*.csv", url="file:///csv", path_prefix="/results"),
            Output(path="/outdir", url="file:///d", type=FileType.DIRECTORY),
        ),
        volumes=("/vol/",),
    )
    layout = Layout(tmp_path)
    mounts = {(m.container, m.read_only) for m in layout.mounts(spec)}
    assert mounts == {
        ("/vol", False),
        ("/out", False),  # /out/sub is inside /out
        ("/results", False),
        ("/outdir", False),
        ("/logs", False),
        ("/in/a.txt", True),
        ("/data/ref", True),
        ("/vol/inside.txt", True),  # read-only even inside a writable volume
    }
    for mount in layout.mounts(spec):
        assert mount.host == tmp_path / "root" / mount.container.lstrip("/")
    order = [m.container for m in layout.mounts(spec)]
    assert order.index("/out") < order.index("/in/a.txt")
    assert order.index("/vol") < order.index("/vol/inside.txt")


def test_create_makes_writable_dirs_but_not_input_files(tmp_path: Path) -> None:
    spec = TaskSpec(
        executors=(Executor(image="i", command=("x",)),),
        inputs=(Input(path="/in/a.txt", content="a"),),
        outputs=(Output(path="/out/r.txt", url="file:///o"),),
    )
    layout = Layout(tmp_path)
    layout.create(spec)
    assert (tmp_path / "root/out").is_dir()
    assert not (tmp_path / "root/in/a.txt").exists()
    assert layout.stdout(spec, 0) == tmp_path / "meta/0.stdout"


def test_volumes_inside_volumes_are_created(tmp_path: Path) -> None:
    spec = TaskSpec(executors=(Executor(image="i", command=("x",)),), volumes=("/v", "/v/w"))
    Layout(tmp_path).create(spec)
    assert (tmp_path / "root/v/w").is_dir()
