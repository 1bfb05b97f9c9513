"""train.threads = 0: the thread count chosen by measurement (gmn_plugins.runtime.threads.ThreadChooser)."""

import torch

from gmn_plugins.runtime.threads import ThreadChooser


def _run(chooser, seconds_at, steps):
    """Run `steps` steps whose time is seconds_at(thread count); return the counts used."""
    used = []
    for _ in range(steps):
        count = chooser.next_threads()
        assert torch.get_num_threads() == count
        used.append(count)
        chooser.record(seconds_at(count))
    return used


def test_chooses_the_faster_count_and_follows_the_load():
    before = torch.get_num_threads()
    try:
        chooser = ThreadChooser(cores=4, every=20)
        assert chooser.counts == [4, 2, 1]
        idle = {4: 0.5, 2: 0.8, 1: 1.5}.get
        used = _run(chooser, idle, 30)
        assert used[:5] == [4, 4, 4, 2, 2]  # warm-up, then 2 trials of the current count and of its half
        assert chooser.current == 4 and set(used[5:25]) == {4}
        busy = {4: 3.0, 2: 1.0, 1: 1.6}.get  # a competitor: 4 threads now wait on cores the other holds
        used = _run(chooser, busy, 12)
        assert used[:3] == [4, 4, 4]  # 3 slow steps in a row (patience) start a probe at once ...
        assert chooser.current == 2  # ... which moves to the half
        used = _run(chooser, busy, 30)
        assert chooser.current == 2 and 1 in used  # and probes its neighbours (1 and 4) again later
        used = _run(chooser, idle, 60)
        assert chooser.current == 4  # the competitor left: back up
    finally:
        torch.set_num_threads(before)


def test_a_fixed_count_never_changes():
    before = torch.get_num_threads()
    try:
        chooser = ThreadChooser(fixed=1, cores=4, every=2)
        assert set(_run(chooser, {4: 0.1, 2: 0.1, 1: 9.0}.get, 20)) == {1}
    finally:
        torch.set_num_threads(before)


def test_paced_leaves_torch_alone_unless_a_command_set_it():
    from gmn_plugins.runtime.threads import paced, set_threads

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert list(paced(range(3))) == [0, 1, 2] and torch.get_num_threads() == 2  # library use: untouched
        previous = set_threads(1)  # what gmn-eval --threads 1 does
        assert previous is None
        for _ in paced(range(3)):
            assert torch.get_num_threads() == 1
        set_threads(previous)
        torch.set_num_threads(2)
        list(paced(range(3)))
        assert torch.get_num_threads() == 2
    finally:
        set_threads(None)
        torch.set_num_threads(before)
