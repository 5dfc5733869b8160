"""gradscope's records in the tools practitioners already log to: sinks for ``GradientMonitor(sinks=[...])``.

* :class:`gradscope.integrations.mlflow_sink.MLflowSink` (``pip install 'gradscope[mlflow]'``).

A sink of one's own needs only ``append(records)``: see :mod:`gradscope.recorders.sinks`.
"""
