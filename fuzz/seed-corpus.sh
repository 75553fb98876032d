#!/bin/sh
# Seeds the lab_loader corpus with every lab kubelab ships and every malformed fixture,
# each packed as LabFolder::unpack reads it: lab.yaml, then for each other file a NUL
# byte, its path, a newline and its text. Run from anywhere; writes fuzz/corpus/lab_loader.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/fuzz/corpus/lab_loader"
mkdir -p "$out"
for lab in "$root"/scenarios/seed/*/ "$root"/scenarios/conformance/*/ "$root"/tests/fixtures/malformed/*/; do
    [ -f "$lab/lab.yaml" ] || continue
    name=$(basename "$(dirname "$lab")")-$(basename "$lab")
    {
        cat "$lab/lab.yaml"
        for file in "$lab"*; do
            base=$(basename "$file")
            # Symlinks are left out: the fuzzer's folder is in memory.
            if [ "$base" = lab.yaml ] || [ "$base" = expected.txt ] || [ -L "$file" ] || [ ! -f "$file" ]; then
                continue
            fi
            printf '\000%s\n' "$base"
            cat "$file"
        done
    } > "$out/$name"
done
echo "$(ls "$out" | wc -l) seeds in $out"
