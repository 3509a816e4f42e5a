#!/usr/bin/env bash
# Mutation testing of lightning_topo/topology/ with mutmut 3 (a benchmark, not CI). Configuration: pyproject.toml's
# [tool.mutmut] (what is mutated, which tests run). Resumable: mutmut keeps every verdict in mutants/ and a second
# `mutmut run` only checks the mutants not checked yet. Usage, from the repository root:
#   bash benchmarks/mutation/run.sh before     # existing tests; keeps the verdicts in benchmarks/mutation/before.json
#   bash benchmarks/mutation/run.sh after      # re-checks the survivors of the before run with today's tests
#   bash benchmarks/mutation/run.sh summary    # prints the scores (benchmarks/results/mutation_topology.txt)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
MUTMUT=${MUTMUT:-.venv/bin/mutmut}
HERE=benchmarks/mutation
case "${1:-summary}" in
  before)
    rm -rf mutants
    nice -n 19 "$MUTMUT" run --max-children 2 || true  # interrupted (Ctrl-C, time limit): the verdicts so far stay
    "$PY" "$HERE/summary.py" --save "$HERE/before.json" > /dev/null
    ;;
  after)
    # the new test files must be in mutants/tests too (mutmut copied tests/ when the before run began)
    rm -rf mutants/tests && cp -r tests mutants/tests
    # shellcheck disable=SC2046
    nice -n 19 "$MUTMUT" run --max-children 2 $("$PY" "$HERE/summary.py" --survivors | sed -n '/^survivors/,/^$/p' | grep '__mutmut_') || true
    ;;
  summary)
    "$PY" "$HERE/summary.py" --before "$HERE/before.json" \
      --command "bash benchmarks/mutation/run.sh before   # nice -n 19 mutmut run --max-children 2" \
      --command "bash benchmarks/mutation/run.sh after    # nice -n 19 mutmut run --max-children 2 <survivors>" \
      --command "bash benchmarks/mutation/run.sh summary"
    ;;
esac
