"""Attribution context: merging, restoring, decorators, and propagation to threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from costportal_client import (
    ContextThreadPoolExecutor,
    attribute_to,
    bind_context,
    current_attribution,
    reset_attribution,
    set_attribution,
    set_default_attribution,
    start_thread,
    submit_with_context,
)


@pytest.fixture(autouse=True)
def no_process_defaults() -> Any:
    yield
    set_default_attribution()


def test_nested_contexts_merge_with_the_inner_one_winning_and_restore_on_exit() -> None:
    with attribute_to(cost_center="cc_marketing", user_id="alice", tags={"team": "growth", "tier": "free"}):
        with attribute_to(user_id="bob", feature="summarize", tags={"tier": "pro"}):
            inner = current_attribution()
            assert inner.cost_center == "cc_marketing"
            assert inner.user_id == "bob"
            assert inner.feature == "summarize"
            assert dict(inner.tags) == {"team": "growth", "tier": "pro"}
        outer = current_attribution()
        assert outer.user_id == "alice"
        assert outer.feature is None
        assert dict(outer.tags) == {"team": "growth", "tier": "free"}
    assert current_attribution().cost_center is None


def test_context_is_restored_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError):
        with attribute_to(cost_center="cc_a"):
            raise RuntimeError("boom")
    assert current_attribution().cost_center is None


def test_decorator_attributes_sync_and_async_functions() -> None:
    @attribute_to(feature="report", environment="staging")
    def sync_work() -> str | None:
        return current_attribution().feature

    @attribute_to(feature="chat")
    async def async_work() -> dict[str, str | None]:
        await asyncio.sleep(0)
        seen = current_attribution()
        return {"feature": seen.feature, "cost_center": seen.cost_center}

    assert sync_work() == "report"
    with attribute_to(cost_center="cc_support"):
        # asyncio.run's main task starts in a copy of this context, so the cost center is inherited.
        assert asyncio.run(async_work()) == {"feature": "chat", "cost_center": "cc_support"}
    assert current_attribution().feature is None


def test_set_and_reset_for_code_without_a_with_block() -> None:
    token = set_attribution(cost_center="cc_ops", session_id="s-1")
    assert current_attribution().session_id == "s-1"
    reset_attribution(token)
    assert current_attribution().session_id is None


def test_process_defaults_sit_under_every_context() -> None:
    set_default_attribution(environment="production", cost_center="cc_default")
    with attribute_to(cost_center="cc_team"):
        seen = current_attribution()
    assert (seen.environment, seen.cost_center) == ("production", "cc_team")
    assert current_attribution().cost_center == "cc_default"


def test_values_are_coerced_to_strings() -> None:
    with attribute_to(user_id=42, tags={"shard": 7}):  # type: ignore[arg-type]
        seen = current_attribution()
    assert seen.user_id == "42"
    assert dict(seen.tags) == {"shard": "7"}


def test_a_plain_thread_starts_without_the_context_but_the_helpers_carry_it() -> None:
    results: dict[str, str | None] = {}

    def remember(key: str) -> None:
        results[key] = current_attribution().cost_center

    with attribute_to(cost_center="cc_batch"):
        plain = threading.Thread(target=remember, args=("plain",))
        plain.start()
        plain.join()
        start_thread(remember, "start_thread").join()
        bound = bind_context(remember)
        with ContextThreadPoolExecutor(max_workers=2) as pool:
            pool.submit(remember, "executor").result()
            list(pool.map(lambda key: remember(key), ["executor_map"]))
        with ContextThreadPoolExecutor(max_workers=1) as pool:
            submit_with_context(pool, remember, "submit_with_context").result()
    # Run after the block ends: the bound callable still carries the snapshot taken inside it.
    threading.Thread(target=bound, args=("bind_context",)).start()
    for _ in range(100):
        if "bind_context" in results:
            break
        threading.Event().wait(0.01)

    assert results == {
        "plain": None,
        "start_thread": "cc_batch",
        "executor": "cc_batch",
        "executor_map": "cc_batch",
        "submit_with_context": "cc_batch",
        "bind_context": "cc_batch",
    }


def test_a_bound_function_can_run_in_several_threads_at_once() -> None:
    barrier = threading.Barrier(4)
    seen = []

    def work() -> None:
        barrier.wait(timeout=5)  # all four inside the bound context at the same time
        seen.append(current_attribution().user_id)

    with attribute_to(user_id="u-7"):
        bound = bind_context(work)
    threads = [threading.Thread(target=bound) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == ["u-7"] * 4


def test_asyncio_tasks_inherit_the_context_and_do_not_leak_changes_back() -> None:
    async def child(name: str) -> dict[str, str | None]:
        inherited = current_attribution().cost_center
        with attribute_to(feature=name):
            await asyncio.sleep(0.01)
            mine = current_attribution().feature
        return {"inherited": inherited, "mine": mine}

    async def in_thread() -> str | None:
        return await asyncio.to_thread(lambda: current_attribution().cost_center)

    async def main() -> Any:
        with attribute_to(cost_center="cc_async"):
            tasks = [asyncio.create_task(child(f"f{i}")) for i in range(3)]
            # A layer pushed inside a task is invisible to its siblings and to the parent.
            results = await asyncio.gather(*tasks)
            parent_feature = current_attribution().feature
            to_thread = await in_thread()
        return results, parent_feature, to_thread

    results, parent_feature, to_thread = asyncio.run(main())
    assert results == [{"inherited": "cc_async", "mine": f"f{i}"} for i in range(3)]
    assert parent_feature is None
    assert to_thread == "cc_async"
