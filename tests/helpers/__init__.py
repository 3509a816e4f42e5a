"""What tests share besides fixtures (those live in ``tests/conftest.py``): paths, child processes, trainers, small
user models and the stand-in jobs the monitor's worker processes import. Imported as ``helpers.x`` (``tests/`` is on
pytest's ``pythonpath``); no test imports another test file."""
