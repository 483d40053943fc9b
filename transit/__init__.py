"""Buses: the pure core of schedule adherence, headways, bunching and arrival predictions.

Like ``signals``, ``detection`` and ``forecasting`` it imports nothing of ``streams`` or
``simulators``, no Kafka client and no GTFS library: ``streams`` translates records and GTFS
feeds into the small types of :mod:`transit.schedule` and :mod:`transit.adherence`, so every
rule here runs in a unit test without a broker.

* :mod:`transit.schedule`: the timetable (trips, their stops, their service days).
* :mod:`transit.adherence`: one vehicle's positions -> stop passages and its delay; bad input
  (out of order, duplicate, unknown trip, teleporting, stale) is a counted rejection.
* :mod:`transit.headways`: passages at a stop -> headways, bunching and gap episodes, CV.
* :mod:`transit.predict`: arrival predictions for the next stops and the schedule-only baseline.
* :mod:`transit.monitor`: all of the above for a fleet, as the agent uses it.
"""
