#!/usr/bin/env bash
# Re-make docs/leaderboard.md's table: one fixed-step training per row, then one `tinct compare`
# on cbsd68 (benchmark only; no row trains on it). Issue 20.
#
#   nohup bash bench/leaderboard.sh > runs/leaderboard2/log.txt 2>&1 &
#
# Every training runs the code of the commit checked out (HEAD, copied to $OUT/src-<commit>
# with `git archive`, so uncommitted edits in src/ cannot change a row), one after another, at
# `nice -n 5`, with 1 torch thread, a fixed seed and a fixed number of steps. Each command's
# wall time is logged as "WALL <row> <seconds> rc=<code>". Rows:
#   improved presets: unet-cpu pix2pix-cpu zhang16-cpu palette-mlp palette-cnn fc-image window-mlp
#   write-up-faithful: unet-relu pix2pix palette-mlp-one-photo-palette palette-cnn-one-photo-palette
#                      fc-image-clipped-sgd (window-mlp is both)
#   palette-cnn is trained twice with the identical command (palette-cnn-repro): the SHA-256 of
#   the two best.safetensors' tensors tells whether training is bit-reproducible.
# The palette checkpoints are scored twice: <row>-argmax (the checkpoint as trained) and
# <row>-expectation (the same weights, header setting model decode "expectation").
# The compare waits for /work/notes/v2-installed (the new tinct-v2 weights) until $V2_DEADLINE
# and runs without tinct-v2 if it never appears.
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/leaderboard2}
REPORT=${REPORT:-reports/leaderboard2/compare}
CUTOFF=${CUTOFF:-19:25}          # UTC: start no training after this (the compare needs the rest)
V2_DEADLINE=${V2_DEADLINE:-19:40} # UTC: stop waiting for the new tinct-v2 weights
V2_FLAG=${V2_FLAG:-/work/notes/v2-installed}
LIMIT=${LIMIT:-68}               # cbsd68 images scored (sorted by path); 68 = all of them
M=$OUT/models
mkdir -p "$OUT" "$M"

COMMIT=${COMMIT:-$(git rev-parse HEAD)}  # the table of 2026-12-02: db90303...; the table's own commit is in docs/leaderboard.md
SRC=$PWD/$OUT/src-$COMMIT
if [ ! -d "$SRC/src/tinct" ]; then
    mkdir -p "$SRC" && git archive "$COMMIT" src | tar -x -C "$SRC"
fi
echo "commit $COMMIT; training code: $SRC/src; $(date -u +%FT%TZ)"
echo "python $(.venv/bin/python -c 'import sys, torch, numpy; print(sys.version.split()[0], "torch", torch.__version__, "numpy", numpy.__version__)')"

DATA=(--data caltech101:../shared/data/caltech101 ../shared/data/sun80 ../shared/data/urban100
      --set data.cache_dir=cache --set data.cache_side=144 --set data.crops_per_large_image=8
      --set 'data.exclude=["caltech101/sunflower/image_0001.jpg","caltech101/ferry/image_0001.jpg","caltech101/strawberry/image_0001.jpg","caltech101/bonsai/image_0005.jpg","caltech101/rooster/image_0002.jpg"]')
COMMON=(--set train.threads=1 --set train.seed=0 --set train.max_val_images=128 --no-progress --overwrite)

# train ROW PRESET EPOCHS STEPS_PER_EPOCH [extra --set ...]: one row, timed, best.safetensors
# copied to $M/ROW.safetensors.
train() {
    local row=$1 preset=$2 epochs=$3 steps=$4
    shift 4
    if [[ $(date -u +%H:%M) > $CUTOFF ]]; then echo "SKIP $row: past $CUTOFF UTC"; return; fi
    echo "== $row: $(date -u +%T) tinct train --preset $preset epochs=$epochs steps/epoch=$steps $*"
    local t0=$SECONDS
    PYTHONPATH=$SRC/src nice -n 5 .venv/bin/tinct train --preset "$preset" "${DATA[@]}" --out "$OUT/$row" \
        "${COMMON[@]}" --set train.epochs="$epochs" --set train.max_steps_per_epoch="$steps" "$@" \
        > "$OUT/$row.log" 2>&1
    local rc=$?
    echo "WALL $row $((SECONDS - t0)) rc=$rc"
    tail -n 3 "$OUT/$row.log"
    [ -f "$OUT/$row/best.safetensors" ] && cp "$OUT/$row/best.safetensors" "$M/$row.safetensors"
}

# decode_copies ROW: $M/ROW-argmax (as trained) and $M/ROW-expectation (header config.decode changed;
# tensors unchanged), then drop $M/ROW so that every palette row says its decoding.
decode_copies() {
    local row=$1
    [ -f "$M/$row.safetensors" ] || return
    mv "$M/$row.safetensors" "$M/$row-argmax.safetensors"
    PYTHONPATH=$SRC/src .venv/bin/python - "$M/$row-argmax.safetensors" "$M/$row-expectation.safetensors" <<'EOF'
import json, sys
from safetensors.torch import load_file, save_file
from safetensors import safe_open
src, dst = sys.argv[1:]
with safe_open(src, "pt") as handle:
    metadata = handle.metadata()
info = json.loads(metadata["tinct"])
assert info["config"]["decode"] == "argmax", info["config"]["decode"]
info["config"]["decode"] = "expectation"
save_file(load_file(src), dst, metadata={**metadata, "tinct": json.dumps(info, sort_keys=True)})
EOF
}

# The NumPy rows (window-mlp, fc-image*) read whole photos at 32 px (one tile per photo, the
# closest thing to the write-ups' small whole images); fc-image shrinks them to 16x16 itself.
SMALL=(--set data.size=32 --set data.cache_side=32 --set data.random_crop=false
       --set data.crops_per_large_image=1 --set data.build_workers=1)

# Step budgets (the table of 2026-12-03): about 100 s of training loop each on an idle core, at the
# speeds of the first pass of 2026-12-02 (tiny budgets); palette-cnn, whose steps were the slowest,
# gets 280 steps. The large write-up-faithful U-Nets get the same time, so far fewer steps.
# The table of 2026-12-02 used 2 x 30 (palette-cnn), 2 x 12, 2 x 24, 1 x 3, 2 x 6, 3 x 6900 and 2 x 140.
# row                            preset                      epochs steps/epoch  row-specific settings
train palette-cnn                palette-cnn                    4 70  --set model.input_size=144
train palette-cnn-repro          palette-cnn                    4 70  --set model.input_size=144
train palette-cnn-one-photo-palette palette-cnn-one-photo-palette 4 70 --set model.input_size=144
train palette-mlp                palette-mlp                    4 45  --set model.input_size=144
train palette-mlp-one-photo-palette palette-mlp-one-photo-palette 4 45 --set model.input_size=144
train unet-cpu                   unet-cpu                       4 128
train unet-relu                  unet-relu                      2 20  --set data.size=128 --set model.input_size=128 \
    --set data.val_fraction=0.05
train pix2pix-cpu                pix2pix-cpu                    4 64
train pix2pix                    pix2pix                        2 13
train zhang16-cpu                zhang16-cpu                    4 30
train window-mlp                 window-mlp                    40 6900 "${SMALL[@]}"
train fc-image                   fc-image                      20 140  "${SMALL[@]}"
train fc-image-clipped-sgd       fc-image-clipped-sgd          20 140  "${SMALL[@]}" \
    --set data.max_images=null --set data.val_fraction=0.05

for row in palette-cnn palette-cnn-repro palette-cnn-one-photo-palette palette-mlp palette-mlp-one-photo-palette; do
    decode_copies "$row"
done
# weights_sha FILE...: SHA-256 of the file, and of its tensor bytes only (everything after the
# safetensors header). The header also records the run's wall-clock seconds, so two bit-identical
# trainings give different file hashes but the same weights hash.
weights_sha() {
    .venv/bin/python - "$@" <<'EOF'
import hashlib, struct, sys
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    (length,) = struct.unpack("<Q", data[:8])
    print(hashlib.sha256(data).hexdigest(), hashlib.sha256(data[8 + length:]).hexdigest(), path)
EOF
}
echo "== SHA-256 of every checkpoint: file, tensors"
weights_sha "$M"/*.safetensors
echo "== reproducibility: palette-cnn trained twice (file, tensors)"
weights_sha "$OUT/palette-cnn/best.safetensors" "$OUT/palette-cnn-repro/best.safetensors"

# The compare: shipped models, then each write-up-faithful row beside its improved one.
while [ ! -e "$V2_FLAG" ] && [[ $(date -u +%H:%M) < $V2_DEADLINE ]]; do sleep 20; done
SHIPPED=(tinct-v1 tinct-v0)
if [ -e "$V2_FLAG" ]; then SHIPPED=(tinct-v2 "${SHIPPED[@]}"); else echo "NOTE: $V2_FLAG absent at $V2_DEADLINE: no tinct-v2 row"; fi
ROWS=()
for row in unet-cpu unet-relu pix2pix-cpu pix2pix zhang16-cpu \
        palette-mlp-argmax palette-mlp-expectation palette-mlp-one-photo-palette-argmax \
        palette-mlp-one-photo-palette-expectation palette-cnn-argmax palette-cnn-expectation \
        palette-cnn-one-photo-palette-argmax palette-cnn-one-photo-palette-expectation \
        window-mlp fc-image fc-image-clipped-sgd; do
    [ -f "$M/$row.safetensors" ] && ROWS+=("$M/$row.safetensors")
done
echo "== compare $(date -u +%T): code $(git rev-parse HEAD), uncommitted in src: $(git status --short src | wc -l) files"
t0=$SECONDS
nice -n 5 .venv/bin/tinct compare --models "${SHIPPED[@]}" "${ROWS[@]}" \
    --data ../shared/data/cbsd68 --out "$REPORT" --threads 1 --no-progress --limit "$LIMIT"
rc=$?
echo "WALL compare $((SECONDS - t0)) rc=$rc"
echo "done $(date -u +%FT%TZ)"
