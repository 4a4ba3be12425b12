#!/usr/bin/env bash
# Smoke test of VidTrain's two installations, built from a clean checkout of this repository's HEAD:
#
#   1. the wheel: `python -m build` makes the wheel and the sdist; the wheel is installed (not editable) into a
#      fresh virtual environment, and only what that installed (vidtrain, vidtrain-gui) is run;
#   2. the one-folder app (only with VIDTRAIN_FROZEN_SMOKE=1 or --frozen): packaging/build.py (PyInstaller) builds
#      it from that environment, and it is run with an environment that has no python on PATH at all.
#
# For each: `vidtrain --version`; `vidtrain demo` makes the demo project; `vidtrain-gui DEMO --smoke OUT` opens the
# window offscreen, saves a screenshot, presses Train (the job runs through the installation's own executable),
# waits for the predictions and exports a model bundle, the labels and the predictions through the Export dialog;
# then the command line alone trains, predicts and exports a bundle, and (wheel) the bundle's predict.py runs.
# It prints the sizes and times and writes them to OUT/summary.json.
#
#   packaging/smoke.sh [--frozen] [--keep]      (OUT: $VIDTRAIN_SMOKE_DIR, else a new temporary folder)
#
# Needs: python3 (3.10+) with venv, git; the Python packages come from the machine's package index. Run by .ci/run
# (the wheel half every time; the frozen half when VIDTRAIN_FROZEN_SMOKE=1).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
FROZEN="${VIDTRAIN_FROZEN_SMOKE:-0}"
KEEP=0
for arg in "$@"; do
    case "$arg" in
        --frozen) FROZEN=1 ;;
        --keep) KEEP=1 ;;
        *) echo "usage: packaging/smoke.sh [--frozen] [--keep]" >&2; exit 2 ;;
    esac
done
OUT="${VIDTRAIN_SMOKE_DIR:-$(mktemp -d -t vidtrain-smoke.XXXXXX)}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if [ "$KEEP" = 0 ] && [ -z "${VIDTRAIN_SMOKE_DIR:-}" ]; then
    # What is worth keeping is printed; the environments and the build (gigabytes) go.
    trap 'rm -rf "$OUT/src" "$OUT/tools" "$OUT/venv" "$OUT/pyinstaller" "$OUT/dist"' EXIT
fi

# Nothing of the user's: settings, caches, the demo and desktop files all go under OUT.
export QT_QPA_PLATFORM=offscreen
export VIDTRAIN_SETTINGS="$OUT/settings.json"
export XDG_DATA_HOME="$OUT/xdg/data" XDG_CACHE_HOME="$OUT/xdg/cache" XDG_CONFIG_HOME="$OUT/xdg/config"
export PIP_DISABLE_PIP_VERSION_CHECK=1

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { printf '\n== %s\n' "$*"; }
SUMMARY="$OUT/summary.txt"
: >"$SUMMARY"
record() { printf '%-42s %s\n' "$1" "$2" | tee -a "$SUMMARY"; }
size_of() { du -sb "$1" | cut -f1; }
human() { awk -v b="$1" 'BEGIN { split("B kB MB GB", u); i = 1; while (b >= 1000 && i < 4) { b /= 1000; i++ } printf "%.1f %s", b, u[i] }'; }

# run_checks NAME BIN_DIR: the same checks for either installation, with only BIN_DIR's programs.
run_checks() {
    local name="$1" bin="$2" work="$OUT/$1"
    rm -rf "$work"
    mkdir -p "$work"
    say "$name: version"
    "$bin/vidtrain" --version | tee "$work/version.txt"
    grep -q "^vidtrain " "$work/version.txt"

    say "$name: devices and backbones (what the Advanced dialog asks; imports torch and torchvision)"
    "$bin/vidtrain" --json devices >"$work/devices.json"
    grep -q '"resnet18"' "$work/devices.json" || { cat "$work/devices.json"; echo "smoke: $name: devices" >&2; return 1; }

    say "$name: demo project"
    "$bin/vidtrain" demo "$work/demo" >/dev/null

    say "$name: the window (screenshot, Train, predictions, export)"
    local t
    t=$(now)
    if ! "$bin/vidtrain-gui" "$work/demo" --smoke "$work/window"; then
        cat "$work/window/smoke.json" 2>/dev/null || true
        for log in "$work"/demo/cache/jobs/start-*.log; do [ -s "$log" ] && cat "$log"; done
        echo "smoke: $name: the window's check failed" >&2
        return 1
    fi
    record "$name: window check (Train to export)" "$(since "$t") s"
    cat "$work/window/smoke.json"
    local first
    first=$(sed -n 's/.*"first_window_s": \([0-9.]*\).*/\1/p' "$work/window/smoke.json")
    record "$name: first window (cold, demo project)" "$first s"

    say "$name: first window, warm (three runs of --screenshot, wall time)"
    for i in 1 2 3; do
        t=$(now)
        "$bin/vidtrain-gui" "$work/demo" --screenshot "$work/shot$i.png"
        record "$name: window drawn and closed, run $i" "$(since "$t") s"
    done

    say "$name: command line: train, predict, export"
    t=$(now)
    "$bin/vidtrain" train "$work/demo" --predict >/dev/null
    "$bin/vidtrain" export model "$work/demo" --out "$work/bundle" >/dev/null
    record "$name: vidtrain train --predict + export model" "$(since "$t") s"
    for f in model.pt model.onnx predict.py model_card.json; do
        [ -s "$work/bundle/$f" ] || { echo "smoke: $name: the bundle lacks $f" >&2; return 1; }
    done
}

STARTED=$(now)
say "clean checkout of $(git -C "$ROOT" rev-parse --short HEAD)"
rm -rf "$OUT/src"
git clone --quiet --no-hardlinks "$ROOT" "$OUT/src"

say "wheel and sdist (python -m build)"
t=$(now)
"$PYTHON" -m venv "$OUT/tools"
"$OUT/tools/bin/pip" install --quiet build
rm -rf "$OUT/wheelhouse"
"$OUT/tools/bin/python" -m build --outdir "$OUT/wheelhouse" "$OUT/src" >"$OUT/build-wheel.log" 2>&1 ||
    { cat "$OUT/build-wheel.log"; exit 1; }
record "wheel + sdist build" "$(since "$t") s"
WHEEL=$(ls "$OUT"/wheelhouse/*.whl)
record "wheel size ($(basename "$WHEEL"))" "$(human "$(size_of "$WHEEL")")"
record "sdist size" "$(human "$(size_of "$(ls "$OUT"/wheelhouse/*.tar.gz)")")"
"$OUT/tools/bin/python" - "$WHEEL" <<'EOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
needed = ["vidtrain_gui/resources/vidtrain.svg", "vidtrain_gui/resources/vidtrain.desktop",
          "vidtrain_gui/ml/bundle_predict.py", "vidtrain_gui/entry.py"]
missing = [n for n in needed if n not in names]
if missing or any(n.startswith(("tests/", "bench/")) for n in names):
    sys.exit(f"smoke: the wheel lacks {missing} or carries tests/bench")
print(f"wheel: {len(names)} files, resources inside")
EOF

say "fresh virtual environment with the wheel (not editable)"
t=$(now)
rm -rf "$OUT/venv"
"$PYTHON" -m venv "$OUT/venv"
"$OUT/venv/bin/pip" install --quiet "$WHEEL"
record "wheel install (with dependencies)" "$(since "$t") s"
record "installed environment" "$(human "$(size_of "$OUT/venv")")"
# Only the environment's own programs: a `vidtrain_gui` importable from the checkout would hide a missing file.
(cd "$OUT" && PATH="$OUT/venv/bin:/usr/bin:/bin" run_checks wheel "$OUT/venv/bin")
say "wheel: the bundle's predict.py, standalone"
"$OUT/venv/bin/python" "$OUT/wheel/bundle/predict.py" "$OUT/wheel/demo/videos/demo1.mp4" \
    >"$OUT/wheel/bundle-predict.txt"
head -3 "$OUT/wheel/bundle-predict.txt"

if [ "$FROZEN" = 1 ]; then
    say "one-folder build (PyInstaller) from the same environment"
    "$OUT/venv/bin/pip" install --quiet pyinstaller
    t=$(now)
    "$OUT/venv/bin/python" "$OUT/src/packaging/build.py" --dist "$OUT/dist" --work "$OUT/pyinstaller" \
        | tee "$OUT/build-frozen.log" | tail -2
    record "one-folder build" "$(since "$t") s"
    APP="$OUT/dist/VidTrain"
    record "one-folder size" "$(human "$(size_of "$APP")")"
    record "one-folder size without NVIDIA's libraries" \
        "$(human "$(($(size_of "$APP") - $(du -sbc "$APP"/_internal/nvidia* 2>/dev/null | tail -1 | cut -f1)))")"
    # A PATH with the few tools this script itself uses and no python: the build must need none.
    TOOLS="$OUT/tools-only"
    rm -rf "$TOOLS" && mkdir -p "$TOOLS"
    for tool in bash sh date awk tee grep sed cat rm mkdir printf head; do
        ln -s "$(command -v "$tool")" "$TOOLS/$tool"
    done
    if env -i PATH="$TOOLS" /bin/sh -c 'command -v python3 || command -v python' >/dev/null 2>&1; then
        echo "smoke: python is still on PATH" >&2
        exit 1
    fi
    (cd "$OUT" && env -i PATH="$TOOLS" HOME="$OUT/home" QT_QPA_PLATFORM=offscreen \
        VIDTRAIN_SETTINGS="$VIDTRAIN_SETTINGS" XDG_DATA_HOME="$XDG_DATA_HOME" XDG_CACHE_HOME="$XDG_CACHE_HOME" \
        XDG_CONFIG_HOME="$XDG_CONFIG_HOME" OUT="$OUT" SUMMARY="$SUMMARY" \
        "$TOOLS/bash" -c "$(declare -f now since say record run_checks); run_checks frozen '$APP'")
fi

record "smoke test, all of it" "$(since "$STARTED") s"
say "summary ($OUT/summary.txt)"
cat "$SUMMARY"
