"""exconn: supervised, reliable connectivity to crypto exchanges for trading engines.

The public surface: ``start``, ``Config`` (and ``ExchangeConfig``), the handle ``Exconn``,
``exconn.messages`` and ``exconn.errors``.
"""

from exconn import errors, messages
from exconn.config import Config, ExchangeConfig, VenueUrls
from exconn.handle import Exconn, start

__all__ = ["Config", "ExchangeConfig", "Exconn", "VenueUrls", "errors", "messages", "start"]
__version__ = "0.1.0"
