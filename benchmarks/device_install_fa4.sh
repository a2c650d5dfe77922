# Source from the repository root on the device machine, after device_install.sh:  . benchmarks/device_install_fa4.sh
#
# Installs flash-attn-4 4.0.0b36 and nvidia-cutlass-dsl 4.8.1 (the `[gpu]` extra) with what of their needs the
# device image lacks, from wheels carried in two calls back to back on the warm machine: call one carries .fa4a
# (the small wheels and the first part of nvidia-cutlass-dsl-libs-cu12, recompressed with LZMA to 65 MB; pip reads
# it like any wheel) and runs `. benchmarks/device_install_fa4.sh stash`; call two carries .fa4b (the second part)
# and runs `. benchmarks/device_install_fa4.sh` (join, check, install). Parts wait in /tmp/fa4-parts between calls.
_parts=/tmp/fa4-parts
_fa4=/tmp/site-fa4
_cu12=nvidia_cutlass_dsl_libs_cu12-4.8.1-cp312-cp312-manylinux_2_28_x86_64.whl
_sha=07ff0ff253225d152aa4f99b87539e745162eef88487a662fd03c63fe6d0887f
mkdir -p "$_parts"
for _d in .fa4a .fa4b; do [ -d "$_d" ] && cp "$_d"/* "$_parts"/; done
if [ "$1" = stash ]; then
    echo "device_install_fa4.sh: parts stashed in $_parts: $(ls "$_parts" | tr '\n' ' ')"
    return 0
fi
_start=$(date +%s.%N)
cat "$_parts"/cu12.part-* > "$_parts/$_cu12" || return 1
echo "$_sha  $_parts/$_cu12" | sha256sum -c --quiet || { echo "device_install_fa4.sh: $_cu12 is corrupt"; return 1; }
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$_fa4" \
    "$_parts"/*.whl || return 1
export PYTHONPATH="$_fa4:$_fa4/nvidia_cutlass_dsl/dsl_packages${PYTHONPATH:+:$PYTHONPATH}"
python3 -c "import flash_attn.cute, cutlass; print('flash-attn-4 imports')" || return 1
echo "device_install_fa4.sh: installed in $(python3 -c "print(round($(date +%s.%N) - $_start, 1))") s"
