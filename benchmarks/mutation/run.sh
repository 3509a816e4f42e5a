#!/usr/bin/env bash
# Mutation testing of lightning_topo/topology/ with mutmut 3 (a benchmark, not CI). What is mutated and which tests
# run: pyproject.toml's [tool.mutmut]. Resumable: mutmut keeps every verdict in mutants/ (git-ignored), and running
# a step again checks only the mutants not checked yet. One mutmut run for the modules listed (each run starts with
# the clean test suite, minutes on a small machine), in MODULES' order. Usage, from the repository root:
#   bash benchmarks/mutation/run.sh before    # the existing tests only (tests/topology/ moved aside meanwhile);
#                                             # keeps the verdicts in benchmarks/mutation/before.json
#   bash benchmarks/mutation/run.sh after     # re-checks the before run's survivors with today's tests
#   bash benchmarks/mutation/run.sh sample    # a seeded uniform sample of all mutants (SAMPLE, default 300), so
#                                             # that the score stands for every module, not the ones run first
#   bash benchmarks/mutation/run.sh summary   # the scores: benchmarks/results/mutation_topology.txt
# Modules (or functions: graph.x_knn_indices, mutmut's name for graph.knn_indices) added or changed later, each set
# with the tests of the day, then re-checked after new tests (MODULES names them, NAME the snapshot if not MODULES):
#   MODULES="reduction threads" bash benchmarks/mutation/run.sh modules        # all their mutants; the first run
#                                             # keeps its verdicts in benchmarks/mutation/before_reduction_threads.json
#   MODULES="reduction threads" bash benchmarks/mutation/run.sh modules-after  # re-checks that run's survivors
#   MODULES="reduction threads" BEFORE_COMMIT=<the first run's commit> bash benchmarks/mutation/run.sh modules-summary
#                                             # the scores: benchmarks/results/mutation_reduction_threads.txt
#   (the functions changed after the topology sample: MODULES="betti.x_numpy_neighbour_lists ..." NAME=changed_since_bc62159,
#   as benchmarks/results/mutation_changed_since_bc62159.txt quotes)
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
MUTMUT=${MUTMUT:-.venv/bin/mutmut}
HERE=benchmarks/mutation
MODULES=${MODULES:-"checks filters x_ betti graph flag filter_lists intrinsic neighbours"}  # x_: __init__.py
SNAPSHOT="$HERE/before_${NAME:-${MODULES// /_}}.json"  # the modules steps' first verdicts
recheck() {  # re-run a snapshot's non-equivalent survivors (none: nothing, since a bare "mutmut run" runs them all)
  local names
  names=$("$PY" "$HERE/summary.py" --survivors-of "$1")
  if [ -z "$names" ]; then echo "no survivors to re-check in $1"; return; fi
  # shellcheck disable=SC2086
  nice -n 19 "$MUTMUT" run --max-children 2 $names || true
}
case "${1:-summary}" in
  before)
    rm -rf mutants
    # the value tests added with the mutation work, moved aside (mutmut copies tests/ at every run)
    added="checks graph filters betti_options lazy_exports flag filter_lists intrinsic_routes neighbour_routes"
    stash=$(mktemp -d) && for t in $added; do mv "tests/topology/test_$t.py" "$stash"/; done
    globs=() && for m in $MODULES; do globs+=("lightning_topo.topology.$m*"); done
    nice -n 19 "$MUTMUT" run --max-children 2 "${globs[@]}" || true  # cut short: the verdicts so far stay
    mv "$stash"/*.py tests/topology/
    "$PY" "$HERE/summary.py" --save "$HERE/before.json" > /dev/null
    ;;
  after)
    recheck "$HERE/before.json"
    ;;
  sample)
    "$PY" "$HERE/summary.py" --draw "${SAMPLE:-300}" --seed 0 > "$HERE/sample.txt"
    # shellcheck disable=SC2046
    nice -n 19 "$MUTMUT" run --max-children 2 $(cat "$HERE/sample.txt") || true
    ;;
  modules)
    globs=() && for m in $MODULES; do globs+=("lightning_topo.topology.$m*"); done
    nice -n 19 "$MUTMUT" run --max-children 2 "${globs[@]}" || true
    [ -e "$SNAPSHOT" ] || "$PY" "$HERE/summary.py" --modules $MODULES --save "$SNAPSHOT" > /dev/null
    ;;
  modules-after)
    recheck "$SNAPSHOT"
    ;;
  modules-summary)
    # shellcheck disable=SC2086
    "$PY" "$HERE/summary.py" --modules $MODULES --before "$SNAPSHOT" --survivors \
      --command "MODULES=\"$MODULES\" ${NAME:+NAME=$NAME }bash benchmarks/mutation/run.sh modules        # at commit ${BEFORE_COMMIT:-unknown}: nice -n 19 mutmut run --max-children 2 <every mutant of $MODULES>" \
      --command "MODULES=\"$MODULES\" ${NAME:+NAME=$NAME }bash benchmarks/mutation/run.sh modules-after  # with the new tests: <that run's survivors>" \
      --command "MODULES=\"$MODULES\" ${NAME:+NAME=$NAME }bash benchmarks/mutation/run.sh modules-summary"
    ;;
  summary)
    "$PY" "$HERE/summary.py" --before "$HERE/before.json" --sampled "$HERE/sample.txt" \
      --command "bash benchmarks/mutation/run.sh before   # nice -n 19 mutmut run --max-children 2 'lightning_topo.topology.<module>*' ..." \
      --command "bash benchmarks/mutation/run.sh after    # nice -n 19 mutmut run --max-children 2 <the before run's survivors>" \
      --command "bash benchmarks/mutation/run.sh sample   # nice -n 19 mutmut run --max-children 2 <300 mutants drawn with seed 0>" \
      --command "bash benchmarks/mutation/run.sh summary"
    ;;
esac
