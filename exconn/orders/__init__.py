"""The order path's pure core (DESIGN §5). ``read_model``: the query side's read model
(orders, fills, balances, positions from stream events and REST answers); ``reconcile``:
merging a REST picture after an outage. The actors import these modules directly."""
