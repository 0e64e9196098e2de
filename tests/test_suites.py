import pytest

from personaguard.audit.conditions import builtin_conditions
from personaguard.audit.suites import load_suite, task_configs
from personaguard.errors import PersonaguardError


@pytest.mark.parametrize("name", ["demo", "reliability", "safety"])
def test_builtin_suites_reference_known_conditions(name):
    suite = load_suite(name)
    known = builtin_conditions()
    for task in suite.tasks:
        assert set(task.conditions) <= set(known), task.name
    configs = task_configs(suite, "bundled:smollm2-135m", limit=5)
    assert all(c.limit == 5 for c in configs.values())


def test_unknown_suite():
    with pytest.raises(PersonaguardError, match="unknown suite 'nope'"):
        load_suite("nope")
