"""gradscope's records in the tools practitioners already log to: sinks for ``GradientMonitor(sinks=[...])``.

* :class:`gradscope.integrations.mlflow_sink.MLflowSink` (``pip install 'gradscope[mlflow]'``);
* :class:`gradscope.integrations.wandb_sink.WandbSink` (``pip install 'gradscope[wandb]'``).

Both log the same numbers (:mod:`gradscope.integrations.tracking`).

A sink of one's own needs only ``append(records)``: see :mod:`gradscope.recorders.sinks`.
"""
