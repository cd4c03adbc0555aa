"""Adapter for the national population database (Cơ sở dữ liệu quốc gia về dân cư), SOAP via zeep.

``client`` holds the hardened zeep client built from ``wsdl/dancu.wsdl``, ``mapping`` turns
answers into the canonical citizen (:mod:`schemas.population`), ``regions`` checks
administrative codes against the current list.
"""

from adapters.population.adapter import PopulationAdapter, create_adapter
from hub.plugin import Plugin

__all__ = ["PopulationAdapter", "create_adapter", "plugin"]

#: The hub's plugin entry (pyproject.toml, entry-point group ``hub.plugins``).
plugin = Plugin(name="population", adapters={"population": create_adapter})
