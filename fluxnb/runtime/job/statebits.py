"""Job state and result names and their bit values (flux-core's flux_job_state_t and
flux_job_result_t), as job-list filters and ``flux jobs`` use them.

Kept apart from :mod:`.states` (the job manager's state machine) so that a client
imports a few dicts, not the machine.

Examples
--------
>>> STATE_BITS["INACTIVE"], RESULT_BITS["CANCELED"]
(64, 4)
"""

STATES = ("NEW", "DEPEND", "PRIORITY", "SCHED", "RUN", "CLEANUP", "INACTIVE")
STATE_BITS = {"NEW": 1, "DEPEND": 2, "PRIORITY": 4, "SCHED": 8, "RUN": 16, "CLEANUP": 32,
              "INACTIVE": 64}
STATE_ABBREV = {"NEW": "N", "DEPEND": "D", "PRIORITY": "P", "SCHED": "S", "RUN": "R",
                "CLEANUP": "C", "INACTIVE": "I"}
RESULT_ABBREV = {"COMPLETED": "CD", "FAILED": "F", "CANCELED": "CA", "TIMEOUT": "TO"}
RESULT_BITS = {"COMPLETED": 1, "FAILED": 2, "CANCELED": 4, "TIMEOUT": 8}
