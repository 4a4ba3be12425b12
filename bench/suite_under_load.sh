#!/usr/bin/env bash
# The README's test command, N times in a row (default 3), while another CPU-heavy process keeps one core busy the
# whole time (`yes > /dev/null`, at the same priority): the suite must stay green on a busy machine, since its
# tests assert behaviour, not timing. Prints each run's wall time and closing line.
#
#   bash bench/suite_under_load.sh [N]
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
export QT_QPA_PLATFORM=offscreen
yes > /dev/null &
hog=$!
trap 'kill $hog 2>/dev/null' EXIT
echo "load: pid $hog spins one core (yes > /dev/null); $(nproc) cores; $(date -u +%FT%TZ)"
status=0
for k in $(seq 1 "$runs"); do
    start=$(date +%s)
    .venv/bin/python -m pytest -q -p no:cacheprovider > "/tmp/suite-under-load-$k.log" 2>&1
    rc=$?
    end=$(date +%s)
    echo "run $k: exit $rc, $((end - start)) s: $(tail -1 "/tmp/suite-under-load-$k.log")"
    [ $rc -eq 0 ] || status=1
done
exit $status
