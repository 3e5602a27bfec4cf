"""The journey simulator: scenario files, simulated customers and agents over the HTTP API, two repeat
counters, a siloed baseline, and the evaluation report (``tandem eval``)."""
