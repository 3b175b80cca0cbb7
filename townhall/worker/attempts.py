"""What a run's end means for its task's attempts (docs/worker.md, "Retries and dead letters").

Direct work is settled at once. A failed run of shared work is retried until ``[agent] max_attempts``
runs were begun, then failed for good with every run's reason. A run whose worker died (SIGKILL, a
crash) counts as well but leaves no outcome, so a task that kills its workers is not retried forever;
shared work found with its runs spent that way is failed without being run once more.
"""

from __future__ import annotations

from dataclasses import dataclass

from townhall.queues import Delivery, QueueConsumer
from townhall.services.lifecycle import AgentLifecycle, Round
from townhall.store import AttemptOutcome
from townhall.store.processing import Source
from townhall.worker.runner import first_line


@dataclass(frozen=True)
class Attempts:
    """The task side of one worker's runs: ``agent_id``'s, taken through ``consumer``."""

    lifecycle: AgentLifecycle
    consumer: QueueConsumer
    agent_id: str
    max_attempts: int

    def spent(self, delivery: Delivery, task_id: str | None, begun: Round) -> bool:
        """The begun run would be one more than ``max_attempts`` of shared work."""
        return bool(task_id) and delivery.source is Source.SHARED and begun.attempt > self.max_attempts

    async def fail_spent(self, delivery: Delivery, task_id: str) -> str:
        """Fail shared work whose runs are :meth:`spent`, with the other runs' reasons, instead of
        running it; the reason."""
        await self.lifecycle.hand_back(self.agent_id, task_id, release=False)  # this run is not one
        why = f"no run left: {self.max_attempts} begun, one of them ended with its worker"
        await self.consumer.retry_or_fail(delivery, why, why, self.max_attempts)
        await self.lifecycle.become_idle(self.agent_id)
        return why

    async def finish(self, delivery: Delivery, task_id: str | None, error: str | None, output: str,
                     begun: Round) -> str:
        """Write the outcome, then forget the delivery; the state for the log line. A failed run of
        shared work is retried (``[agent] max_attempts``); other work fails at once."""
        state = "completed" if error is None else "failed"
        if task_id and error is not None and delivery.source is Source.SHARED:
            reason = f"attempt {begun.attempt}: {error}; {first_line(output)}".rstrip("; ")
            outcome = await self.consumer.retry_or_fail(delivery, f"{error}\n{output}".strip(), reason,
                                                        self.max_attempts)
            if outcome is AttemptOutcome.REQUEUED:
                state = f"failed, re-queued (attempt {begun.attempt} of {self.max_attempts})"
            elif outcome is AttemptOutcome.FAILED:
                state = f"failed after {begun.attempt} attempts"
        else:
            if task_id:
                await self.lifecycle.settle(self.agent_id, task_id, error, output)
            # Acknowledge only after the task's outcome is written: a crash in between redelivers it,
            # and the redelivery sees a finished task and skips it.
            await self.consumer.done(delivery)
        await self.lifecycle.end_round(self.agent_id, begun.number, task_id, error)
        return state
