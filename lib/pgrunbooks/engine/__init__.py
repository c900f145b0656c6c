"""The engine: runs runbooks headlessly with papermill and writes their artifacts.

One module per concern, in the order of a run: ``catalog`` (which runbooks exist),
``params`` (a notebook's parameters cell, params files, ``-p``), ``prepare`` (validated
parameters and target, before any kernel), ``suites`` (suite files), ``execute`` (papermill,
time limits, salvage of a failed notebook), ``artifacts`` (ipynb, html, findings.json,
index), ``run`` (the thread pools and the exit code); ``results`` holds what they pass
around (:class:`~pgrunbooks.engine.results.Options`, ``RunResult``), ``kernels`` the kernels
started ahead and ``html`` the self-contained HTML report.

Importing the package imports nothing: the notebook layer imports ``engine.html`` in every
runbook kernel, and kernels import ``engine.kernels`` while they start.
"""
