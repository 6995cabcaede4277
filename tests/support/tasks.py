"""Run the task queue inside the test process."""

from __future__ import annotations


def run_task_queue(worker_id: str = "test") -> None:
    """Run every ready task the way `orglogin db_worker` does, in this process, without
    closing the test database (db_worker's own loop closes connections between tasks)."""
    from django_tasks_db.management.commands.db_worker import Worker
    from django_tasks_db.models import DBTaskResult

    worker = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name="default",
        startup_delay=False,
        max_tasks=None,
        worker_id=worker_id,
        excluded_queue_names=[],
    )
    while (result := DBTaskResult.objects.ready().first()) is not None:
        result.claim(worker_id)
        worker.run_task(result)
