from toolferry.agent.capacity import Capacity, Reservation
from toolferry.domain.task import Executor, Resources, TaskSpec

SPEC = TaskSpec(executors=(Executor(image="i", command=("x",)),))


def capacity() -> Capacity:
    return Capacity(cpus=2, ram_gb=4, default_cpus=1, default_ram_gb=0)


def test_a_task_books_what_it_asks_for_else_the_defaults() -> None:
    cap = capacity()
    assert cap.booking(SPEC) == Reservation(cpus=1, ram_gb=0)
    asks = TaskSpec(executors=SPEC.executors, resources=Resources(cpu_cores=2, ram_gb=3))
    assert cap.booking(asks) == Reservation(cpus=2, ram_gb=3)


def test_bookings_fit_exactly_and_no_further() -> None:
    cap = capacity()
    assert cap.reserve("a", Reservation(1.1, 1))
    assert cap.reserve("b", Reservation(0.9, 3))  # 1.1 + 0.9 is 2 despite float rounding
    assert not cap.reserve("c", Reservation(0.1, 0))
    assert cap.default_slots() == 0
    assert cap.release("a") and not cap.release("a")
    assert cap.default_slots() == 1


def test_a_task_is_booked_once_and_a_resumed_one_always() -> None:
    cap = capacity()
    assert cap.reserve("a", Reservation(2, 0))
    assert not cap.reserve("a", Reservation(1, 0))
    assert cap.reserve("b", Reservation(2, 0), force=True)
    assert cap.held() == {"a", "b"}
    assert cap.free() == (-2, 4)


def test_defaults_never_exceed_the_total() -> None:
    cap = Capacity(cpus=0.5, ram_gb=1, default_cpus=1, default_ram_gb=2)
    assert cap.booking(SPEC) == Reservation(cpus=0.5, ram_gb=1)


def test_disk_is_booked_only_where_the_backend_has_a_disk_size() -> None:
    asks = TaskSpec(executors=SPEC.executors, resources=Resources(cpu_cores=1, disk_gb=30))
    sized = Capacity(cpus=4, ram_gb=4, default_cpus=1, default_ram_gb=0, disk_gb=50)
    assert sized.booking(asks) == Reservation(cpus=1, ram_gb=0, disk_gb=30)
    assert sized.reserve("a", sized.booking(asks))
    assert not sized.reserve("b", sized.booking(asks))  # 60 GB of 50: it waits
    assert sized.reserve("c", sized.booking(SPEC))  # no disk asked: fits
    unsized = Capacity(cpus=4, ram_gb=4, default_cpus=1, default_ram_gb=0)
    assert unsized.booking(asks).disk_gb == 0
    assert unsized.reserve("a", unsized.booking(asks))
    assert unsized.reserve("b", unsized.booking(asks))
