#!/usr/bin/env bash
# The study (docs/acq.md, "The study"): on Fashion-MNIST, at each bit width and seed,
#
#   ptq    quantize --method ptq                          (Gaussian-noise calibration, data-free)
#   gdfq   datafree --method gdfq
#   acm    datafree --method acq --pair-weight 0 --cons-weight 0   (GDFQ + condition/ACM)
#   pair   datafree --method acq --cons-weight 0                   (+ paired loss)
#   acq    datafree --method acq                                   (+ consistency = ACQ)
#   qat    quantize --method qat                          (REAL training data: not data-free)
#
# with ACQ's default weights, or those of --pair-weight / --cons-weight for the pair and acq arms;
# or, with --sweep, ACQ with one of its loss weights moved from its default at a time (the sweep
# behind the defaults, each moved down and up by about a factor of 3): gdfq, acq, and
# acq-acm{0.3,3}, acq-pair{0.2,1.8}, acq-cons{0.7,6};
# then `diagnose --json` on every data-free run's generator and once on real test images, and
# the table of final test accuracies (mean ± sample sd over seeds) and diagnostics in
# <out>/table.md (scripts/study-table.py). Every run has its own folder under <out>; a run whose
# result exists is skipped, so the same command resumes an interrupted study.
# Data-free runs go through scripts/mpirun.sh with --ranks N > 1; quantize and diagnose are
# single-process commands and always run directly with --threads.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

usage() {
    cat >&2 <<'EOF'
usage: scripts/study.sh [--preset quick|short|default|long] [--seeds N] [--bits "4 3"] [--ranks N] [--threads T]
                        [--out DIR] [--bin PATH] [--teacher FILE] [--test-limit N] [--student-lr LR] [--samples N]
                        [--student-ce-weight W] [--weight-range minmax|mse] [--activation-range minmax|mse]
                        [--pair-weight W] [--cons-weight W] [--sweep]
EOF
    exit 2
}
fail() { echo "study.sh: $*" >&2; exit 2; }

preset=default seeds=3 bits="4 3" ranks=1 threads=$(nproc)
out="runs/study-$(date -u +%Y%m%d)"
bin="${ACQ_DIST_BIN:-$root/.build/release/acq-dist}"
teacher="$root/models/resnet20-fashion-mnist.safetensors"
test_limit="" student_lr="" samples="" ce_weight=1 sweep=0 weight_range=minmax activation_range=minmax
pair_weight="" cons_weight=""
while [ $# -gt 0 ]; do
    case "$1" in
        --sweep) sweep=1; shift; continue ;;
        --preset|--seeds|--bits|--ranks|--threads|--out|--bin|--teacher|--test-limit|--student-lr|--samples|--student-ce-weight|--weight-range|--activation-range|--pair-weight|--cons-weight)
            [ $# -ge 2 ] || { echo "study.sh: $1 needs a value" >&2; usage; }
            v="$2"
            case "$1" in
                --preset) preset="$v" ;; --seeds) seeds="$v" ;; --bits) bits="$v" ;; --ranks) ranks="$v" ;;
                --threads) threads="$v" ;; --out) out="$v" ;; --bin) bin="$v" ;; --teacher) teacher="$v" ;;
                --test-limit) test_limit="$v" ;; --student-lr) student_lr="$v" ;; --samples) samples="$v" ;;
                --student-ce-weight) ce_weight="$v" ;;
                --pair-weight) pair_weight="$v" ;; --cons-weight) cons_weight="$v" ;;
                --weight-range) weight_range="$v" ;; --activation-range) activation_range="$v" ;;
            esac
            shift 2 ;;
        -h|--help) usage ;;
        *) echo "study.sh: unknown option '$1'" >&2; usage ;;
    esac
done

positive() { [[ "$2" =~ ^[1-9][0-9]*$ ]] || fail "$1 needs a positive integer, got '$2'"; }
positive --seeds "$seeds"
positive --ranks "$ranks"
positive --threads "$threads"
[ -z "$test_limit" ] || positive --test-limit "$test_limit"
[ -z "$samples" ] || positive --samples "$samples"
nonnegative() { [[ "$2" =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail "$1 needs a number of 0 or more, got '$2'"; }
nonnegative --student-ce-weight "$ce_weight"
[ -z "$pair_weight" ] || nonnegative --pair-weight "$pair_weight"
[ -z "$cons_weight" ] || nonnegative --cons-weight "$cons_weight"
[ "$sweep" = 0 ] || [ -z "$pair_weight$cons_weight" ] || fail "--sweep moves one weight at a time from acq-dist's defaults; it takes no --pair-weight or --cons-weight"
for b in $bits; do [[ "$b" =~ ^[2-8]$ ]] || fail "--bits takes widths from 2 to 8, got '$b'"; done
[[ "$weight_range" =~ ^(minmax|mse)$ ]] || fail "--weight-range must be minmax or mse, got '$weight_range'"
[[ "$activation_range" =~ ^(minmax|mse)$ ]] || fail "--activation-range must be minmax or mse, got '$activation_range'"
[ -n "${bits// /}" ] || fail "--bits is empty"
[ -x "$bin" ] || fail "$bin is not an executable (build with 'swift build -c release', or pass --bin / set ACQ_DIST_BIN)"
[ -r "$teacher" ] || fail "teacher file $teacher does not exist (--teacher)"
command -v python3 >/dev/null || fail "python3 is not on PATH (the table needs it)"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"

# Preset: data-free steps, warm-up, global batch (also the diagnostics' batch), calibration
# batches, student learning rate; PTQ's noise batches; QAT's training images; diagnostic samples.
# default is the setting of the first data-free runs in docs/results.md.
case "$preset" in
    quick)   steps=2    warmup=1   batch=8  calib=1  lr=1e-3 ptq=(--calibration-batches 2 --calibration-batch-size 16)
             qat=(--epochs 1 --train-limit 256 --batch-size 128 --calibration-batches 2) diag=64 ;;
    short)   steps=200  warmup=100 batch=64 calib=20 lr=1e-4 ptq=() qat=(--epochs 1 --train-limit 19200) diag=1024 ;;
    default) steps=400  warmup=200 batch=64 calib=20 lr=1e-4 ptq=() qat=(--epochs 1) diag=1024 ;;
    long)    steps=2000 warmup=400 batch=64 calib=20 lr=1e-4 ptq=() qat=(--epochs 3) diag=1024 ;;
    *) fail "--preset must be quick, short, default or long, got '$preset'" ;;
esac
[ -z "$student_lr" ] || lr="$student_lr"
[ -z "$samples" ] || diag="$samples"
(( diag % batch == 0 )) || fail "--samples $diag must be a multiple of the preset's batch of $batch"
limit=()
[ -z "$test_limit" ] || limit=(--test-limit "$test_limit")

mkdir -p "$out"
# A resumed study must be the same study: refuse a folder holding runs of other settings.
settings="$([ "$sweep" = 1 ] && echo "sweep ")preset=$preset steps=$steps warmup=$warmup batch=$batch calibration=$calib student_lr=$lr student_ce_weight=$ce_weight weight_range=$weight_range activation_range=$activation_range${pair_weight:+ pair_weight=$pair_weight}${cons_weight:+ cons_weight=$cons_weight} diagnostic_samples=$diag test_limit=${test_limit:-all} teacher=$(basename "$teacher")"
if [ -f "$out/settings.txt" ]; then
    [ "$(cat "$out/settings.txt")" = "$settings" ] || fail "$out holds a study with other settings ($(cat "$out/settings.txt")); use another --out"
else
    echo "$settings" > "$out/settings.txt"
fi
echo "study.sh: $settings, seeds $seeds, bits $bits, $ranks rank(s), into $out"

# run NAME COMMAND...: runs an acq-dist command with its output in <out>/NAME/log.txt.
run() {
    local name="$1"; shift
    mkdir -p "$out/$name"
    echo "study.sh: $name: $*" | sed "s|$bin|acq-dist|"
    local start=$SECONDS
    if ! "$@" > "$out/$name/log.txt" 2>&1; then
        tail -n 5 "$out/$name/log.txt" >&2
        fail "$name failed; its output is in $out/$name/log.txt"
    fi
    echo "study.sh: $name done in $((SECONDS - start)) s"
}

datafree_done() { [ -f "$1/generator.safetensors" ] && tail -n 1 "$1/metrics.jsonl" 2>/dev/null | grep -q student_after_accuracy; }

datafree() {  # datafree NAME BITS SEED ARGS...
    local name="$1" b="$2" seed="$3"; shift 3
    datafree_done "$out/$name" && { echo "study.sh: $name: done already"; return; }
    local args=(datafree "$@" --model "$teacher" --wbits "$b" --abits "$b" --seed "$seed" --steps "$steps"
                --warmup-steps "$warmup" --batch-size "$batch" --calibration-steps "$calib" --student-lr "$lr"
                --student-ce-weight "$ce_weight" --weight-range "$weight_range" --activation-range "$activation_range"
                --run-dir "$out/$name" "${limit[@]}")
    if [ "$ranks" -gt 1 ]; then
        run "$name" bash "$root/scripts/mpirun.sh" -np "$ranks" --bin "$bin" -- "${args[@]}"
    else
        run "$name" "$bin" "${args[@]}" --threads "$threads"
    fi
}

quantize() {  # quantize NAME BITS SEED ARGS...
    local name="$1" b="$2" seed="$3"; shift 3
    [ -f "$out/$name/student.safetensors" ] && { echo "study.sh: $name: done already"; return; }
    run "$name" "$bin" quantize "$@" --teacher "$teacher" --wbits "$b" --abits "$b" --seed "$seed" \
        --weight-range "$weight_range" --activation-range "$activation_range" \
        --run-dir "$out/$name" "${limit[@]}" --threads "$threads"
}

diagnose() {  # diagnose FOLDER SOURCE-ARGS...: writes FOLDER/diagnostics.json
    local folder="$1"; shift
    [ -s "$folder/diagnostics.json" ] && return
    if ! "$bin" diagnose "$@" --model "$teacher" --samples "$diag" --batch-size "$batch" --json --threads "$threads" \
            > "$folder/diagnostics.json.tmp" 2> "$folder/diagnose.log"; then
        cat "$folder/diagnose.log" >&2
        fail "diagnose failed for $folder (see $folder/diagnose.log)"
    fi
    mv "$folder/diagnostics.json.tmp" "$folder/diagnostics.json"
    echo "study.sh: diagnostics of $folder: $(cat "$folder/diagnostics.json")"
}

mkdir -p "$out/real"
diagnose "$out/real" --real
# The sweep: the default weights are 1 (ACM), 0.6 (pair), 2 (consistency) (`acq-dist methods`);
# each is moved down and up by about a factor of 3 with the others at their defaults.
sweep_runs=("acm 0.3" "acm 3" "pair 0.2" "pair 1.8" "cons 0.7" "cons 6")
pair_args=(${pair_weight:+--pair-weight "$pair_weight"})
acq_args=("${pair_args[@]}" ${cons_weight:+--cons-weight "$cons_weight"})
for b in $bits; do
    for ((seed = 0; seed < seeds; seed++)); do
        tag="w${b}a${b}-seed$seed"
        if [ "$sweep" = 1 ]; then
            datafree "gdfq-$tag" "$b" "$seed" --method gdfq
            datafree "acq-$tag" "$b" "$seed" --method acq
            names=(gdfq acq)
            for r in "${sweep_runs[@]}"; do
                read -r term weight <<< "$r"
                datafree "acq-$term$weight-$tag" "$b" "$seed" --method acq "--$term-weight" "$weight"
                names+=("acq-$term$weight")
            done
            for m in "${names[@]}"; do diagnose "$out/$m-$tag" --generator "$out/$m-$tag/generator.safetensors" --seed "$seed"; done
            continue
        fi
        quantize "ptq-$tag" "$b" "$seed" --method ptq "${ptq[@]}"
        datafree "gdfq-$tag" "$b" "$seed" --method gdfq
        datafree "acm-$tag" "$b" "$seed" --method acq --pair-weight 0 --cons-weight 0
        datafree "pair-$tag" "$b" "$seed" --method acq "${pair_args[@]}" --cons-weight 0
        datafree "acq-$tag" "$b" "$seed" --method acq "${acq_args[@]}"
        quantize "qat-$tag" "$b" "$seed" --method qat "${qat[@]}"
        for m in gdfq acm pair acq; do diagnose "$out/$m-$tag" --generator "$out/$m-$tag/generator.safetensors" --seed "$seed"; done
    done
done
python3 "$root/scripts/study-table.py" "$out"
