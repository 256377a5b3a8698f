"""Batch and cron jobs of escalate: functions of ``now`` that call the domain services."""
