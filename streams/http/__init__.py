"""The worker's HTTP side, served by Faust's web server on ``LEITSTAND_WEB_HOST:PORT``:
``alerts`` (the alarm API), ``signals`` (the signal-control API), ``auth`` (bearer tokens and
request checks they share) and ``probes`` (``/ready``, ``/metrics``, ``/openapi.yaml``).
"""
