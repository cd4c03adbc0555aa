"""The service layer: the hub's use cases as plain functions, called by the ingress (HTTP), the CLI, the
console, plugins (through hub.plugin's HubContext) and the benchmark, so none of them repeats the steps.

- :mod:`hub.services.messages`: accept a posted message, originate one the hub produces itself, submit
  (store, then publish with confirms) either, read a dossier's states;
- :mod:`hub.services.replay`: what operators do to dead letters: replay and discard, recorded with who did it.
"""

from hub.services.messages import (
    Accepted,
    OriginationError,
    Publisher,
    RefusalError,
    accept,
    dossier_states,
    latest_dossier_state,
    originate,
    routed_targets,
    schema_problems,
    submit,
)
from hub.services.replay import (
    DeadLetterFilter,
    ReplayResult,
    discard,
    reason_group,
    reason_key,
    replay_matching,
    replay_message,
    replay_target,
)

__all__ = [
    "Accepted",
    "DeadLetterFilter",
    "OriginationError",
    "Publisher",
    "RefusalError",
    "ReplayResult",
    "accept",
    "discard",
    "dossier_states",
    "latest_dossier_state",
    "originate",
    "reason_group",
    "reason_key",
    "replay_matching",
    "replay_message",
    "replay_target",
    "routed_targets",
    "schema_problems",
    "submit",
]
