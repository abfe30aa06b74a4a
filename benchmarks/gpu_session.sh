#!/usr/bin/env bash
# One prepared GPU session (the `device` tool or any CUDA machine): inference and training benchmarks,
# each part under its own time limit, results as JSON + logs in $OUT (default ./bench_out).
#   bash benchmarks/gpu_session.sh            # on the GPU machine, from the repository root
#   SMOKE=1 bash benchmarks/gpu_session.sh    # tiny settings, to check the script on a CPU first
# Real weights make the precision check (the "dB vs ref" column: fp16 vs fp32 >= 50 dB) meaningful; a GPU
# machine without the `models` extra can be given Real-ESRGAN x4plus as a 32 MB fp16 file (git-ignored,
# carried with the working tree):
#   python -c "import srlab; from srlab.weights.io import save_model; m, _ = srlab.load_model('realesrgan-x4plus'); \
#     save_model('benchmarks/weights/x4plus_fp16.safetensors', m.half())"
#   python -c "from skimage import data; from PIL import Image; Image.fromarray(data.astronaut()).save('benchmarks/weights/photo.png')"
set -u
OUT=${OUT:-bench_out}
mkdir -p "$OUT"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PY=${PY:-python3}
start=$(date +%s)
TOTAL=${TOTAL:-540}  # whole-session budget in seconds: a step gets at most what is left
step() {  # step NAME LIMIT_S CMD...
  local name=$1 limit=$2; shift 2
  local left=$(( TOTAL - ($(date +%s) - start) - 5 ))
  if [ "$left" -lt 30 ]; then echo "=== $name skipped: ${left}s left"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  echo "=== $name (limit ${limit}s, t=$(( $(date +%s) - start ))s)"
  timeout "$limit" "$@" 2>&1 | tee "$OUT/$name.log" | grep -v "^ *$" | tail -40
  echo "=== $name exit ${PIPESTATUS[0]}"
}
WEIGHTS=${WEIGHTS:-benchmarks/weights/x4plus_fp16.safetensors}
[ -f "$WEIGHTS" ] && WARG="--weights $WEIGHTS" || WARG=""
IMG=${IMG:-benchmarks/weights/photo.png}  # a real photo to crop inputs from (else skimage's astronaut)
[ -f "$IMG" ] && WARG="$WARG --image $IMG"
if [ "${SMOKE:-0}" = 1 ]; then
  INF="--device cpu --size 32 --large 64x48 --ref-tile 32 --repeats 1 --warmup 1 --no-onnx"
  CASES=srcnn-x2,rrdb16-x2; LCASES=rrdb16-x2; CCASES=rrdb16-x2
  TRN="--device cpu --batch 1 --blocks 1 --steps 1 --repeats 1 --warmup 1"
else
  INF="--repeats 5 --peak-tflops ${PEAK:-989}"  # H100 SXM / H200 dense fp16/bf16 tensor-core peak
  CASES=srcnn-x2,rrdb16-x2,rrdb23-x2,rrdb23-x4,srvgg-x4; LCASES=rrdb23-x4; CCASES=rrdb23-x4
  TRN="--peak-tflops ${PEAK:-989}"
fi
(nvidia-smi --query-gpu=name,memory.total,clocks.max.sm,driver_version --format=csv || true) | tee "$OUT/gpu.txt"
$PY -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
# Most important first; each step capped so the whole fits a 9-minute device call
# (TOTAL=540); every step writes its own JSON, so a step cut short loses only itself.
# 1. eager model-level + 1080p end to end (fused fp16 channels_last), with a kernel profile
step infer_eager 100 $PY benchmarks/infer_bench.py $INF $WARG --cases $CASES --large-cases $LCASES \
  --profile "${CCASES}" --out "$OUT/infer_eager.json"
# 2. training, eager: reference vs srlab vs fused dense blocks
step train_eager 80 $PY benchmarks/train_bench.py $TRN --cases esrgan,srcnn \
  --variants reference,srlab,srlab-fused --out "$OUT/train_eager.json"
# 3. training compiled with fused blocks and CUDA graphs (compiling takes most of this step)
step train_graphs 190 $PY benchmarks/train_bench.py $TRN --cases esrgan \
  --variants reference,srlab,srlab-compile-fused --compile-mode "${TRAIN_MODE:-reduce-overhead}" \
  --out "$OUT/train_graphs.json"
# 4. 1080p end to end compiled (default mode; fused blocks are on by default on CUDA)
step large_compiled 100 $PY benchmarks/infer_bench.py $INF $WARG --cases "" --large-cases $LCASES --compile \
  --compile-mode "${LARGE_MODE:-default}" --out "$OUT/large_compiled.json"
# 5. model-level compiled tiles, max-autotune kernels, if time is left
step infer_compiled 70 $PY benchmarks/infer_bench.py $INF $WARG --cases $CCASES --compile --compile-cases $CCASES \
  --compile-mode "${TILE_MODE:-max-autotune-no-cudagraphs}" --large-cases "" --out "$OUT/infer_compiled.json"
echo "total $(( $(date +%s) - start ))s"
