"""TRL's experimental trainers, imported in this one place (they may move between TRL releases).

ORPO and CPO (SimPO is CPO with loss_type="simpo", cpo_alpha=0) live under trl.experimental in
TRL 1.16. Everything else in the project imports them from here.
"""

from __future__ import annotations


def orpo():
    """(ORPOConfig, ORPOTrainer)."""
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ORPOConfig, ORPOTrainer


def cpo():
    """(CPOConfig, CPOTrainer)."""
    from trl.experimental.cpo import CPOConfig, CPOTrainer

    return CPOConfig, CPOTrainer
