# Source from the repository root on the device machine (carry .whl):  . benchmarks/device_install.sh
#
# Installs the carried wheels (.whl/*.whl: lmms-eval 0.7.3 and what of its import path the device image lacks,
# decord, av, qwen-vl-utils; several are recompressed with LZMA to fit the 64 MiB a call carries, which pip
# reads like any wheel) into /tmp/site, and torchcodec alone into /tmp/site-torchcodec: qwen_vl_utils reads
# videos with torchcodec whenever it can import it, so only the decoder comparison puts that folder on its path
# (TORCHCODEC_PATH), and FORCE_QWENVL_VIDEO_READER=decord pins the rest to decord. torchcodec finds FFmpeg 7
# through sonames linked to the copy PyAV bundles (/tmp/ffmpeg-libs on LD_LIBRARY_PATH).
#
# The package runs from the carried tree (PYTHONPATH has the repo root); a dist-info in /tmp/site declares its
# lmms-eval entry point (lmms_eval.models: adaspark) as pyproject.toml does, and /tmp/bin/adaspark-eval runs
# its CLI.
_here=$(pwd)
_site=/tmp/site
_tc=/tmp/site-torchcodec
_start=$(date +%s.%N)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$_site" \
    $(ls .whl/*.whl | grep -v torchcodec) || return 1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$_tc" \
    .whl/torchcodec-*.whl || return 1
mkdir -p /tmp/ffmpeg-libs /tmp/bin
for _f in "$_site"/av.libs/*; do ln -sf "$_f" /tmp/ffmpeg-libs/; done
for _lib in avutil avcodec avformat avdevice avfilter swscale swresample; do
    _f=$(ls "$_site"/av.libs/lib$_lib-*.so.* | head -1)
    _major=$(basename "$_f" | sed -E 's/.*\.so\.([0-9]+).*/\1/')
    ln -sf "$_f" /tmp/ffmpeg-libs/lib$_lib.so.$_major
done
_dist="$_site/adaspark_eval-0.1.0.dist-info"
mkdir -p "$_dist"
printf 'Metadata-Version: 2.1\nName: adaspark-eval\nVersion: 0.1.0\n' > "$_dist/METADATA"
printf '[console_scripts]\nadaspark-eval = adaspark_eval.cli.main:app\n\n[lmms_eval.models]\nadaspark = adaspark_eval.lmms:manifests\n' \
    > "$_dist/entry_points.txt"
printf '#!/bin/sh\nexec python3 -m adaspark_eval.cli.main "$@"\n' > /tmp/bin/adaspark-eval
chmod +x /tmp/bin/adaspark-eval
export PYTHONPATH="$_site:$_here${PYTHONPATH:+:$PYTHONPATH}"
export TORCHCODEC_PATH="$_tc"
export LD_LIBRARY_PATH="/tmp/ffmpeg-libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export FORCE_QWENVL_VIDEO_READER=decord
export ADASPARK_TASKS_DIR="$_here/tasks"
export PATH="/tmp/bin:$PATH"
export PYTHONUNBUFFERED=1
echo "install.sh: wheels installed in $(python3 -c "print(round($(date +%s.%N) - $_start, 1))") s"
