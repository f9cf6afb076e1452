"""The live write path of a run: one seam for what an agent call writes.

A call writes twice: its running row before the model is asked (so a crash leaves a trace and
a database that is down fails the call before tokens are spent), and its end - status, usage,
the turn it added to the session's history - in one transaction, so a call is `completed`
exactly when its turn is stored. `TurnStore` (base.py) is that seam; `SqlTurnStore` writes
the end in one round trip on PostgreSQL, `InMemoryTurnStore` is the reference and test double,
and `RunRecorder` (recorder.py) wraps a run's agents to drive it.
"""
