from dataclasses import replace

import pytest

from toolferry.domain.errors import InvalidTask
from toolferry.domain.rules import check_spec
from toolferry.domain.task import Executor, Input, Output, Resources, TaskSpec

OK = TaskSpec(executors=(Executor(image="img", command=("echo", "hi")),))


def check(spec: TaskSpec) -> None:
    check_spec(spec, max_content_bytes=10)


def test_a_minimal_task_passes() -> None:
    check(OK)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (replace(OK, executors=()), "executors"),
        (replace(OK, executors=(Executor(image="img", command=()),)), "executors[0].command"),
        (replace(OK, executors=(Executor(image=" ", command=("x",)),)), "executors[0].image"),
        (
            replace(OK, executors=(Executor(image="i", command=("x",), workdir="rel"),)),
            "executors[0].workdir",
        ),
        (
            replace(OK, executors=(Executor(image="i", command=("x",), stdout="/a/../b"),)),
            "executors[0].stdout",
        ),
        (replace(OK, inputs=(Input(path="/in", url="file:///a", content="x"),)), "inputs[0]"),
        (replace(OK, inputs=(Input(path="/in"),)), "inputs[0].url"),
        (replace(OK, inputs=(Input(path="in", content="x"),)), "inputs[0].path"),
        (replace(OK, inputs=(Input(path="/in", content="x" * 11),)), "inputs[0].content"),
        (
            replace(OK, outputs=(Output(path="/o/*.txt", url="file:///x"),)),
            "outputs[0].path_prefix",
        ),
        (replace(OK, volumes=("vol",)), "volumes[0]"),
        (replace(OK, resources=Resources(cpu_cores=0)), "resources.cpu_cores"),
        (replace(OK, resources=Resources(ram_gb=-1)), "resources.ram_gb"),
    ],
)
def test_each_broken_rule_names_its_field(spec: TaskSpec, field: str) -> None:
    with pytest.raises(InvalidTask) as info:
        check(spec)
    assert info.value.field == field


def test_inline_content_limit_counts_utf8_bytes() -> None:
    check(replace(OK, inputs=(Input(path="/in", content="é" * 5),)))  # 10 bytes
    with pytest.raises(InvalidTask):
        check(replace(OK, inputs=(Input(path="/in", content="é" * 6),)))
