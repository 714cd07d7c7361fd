"""The ERP's side, not the engine: writing databases in the ERP's format
(:mod:`~core.erp.demodb`, behind ``pdh demo-db``) and simulating its exports, good and
broken (:mod:`~core.erp.erpsim`, behind ``pdh erp-sim`` and the demo). The hub never
imports this package; tests and benchmarks use it as the ERP would behave."""
