#!/bin/sh
# Prints the path of a Python >= 3.12 interpreter: PATH first, then pyenv.
ok() { "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; }
for name in python3.14 python3.13 python3.12 python3; do
    p=$(command -v "$name" 2>/dev/null) || continue
    if ok "$p"; then echo "$p"; exit 0; fi
done
root=${PYENV_ROOT:-$HOME/.pyenv}
if [ -d "$root/versions" ]; then
    for d in $(ls -1 "$root/versions" | sort -rV); do
        p="$root/versions/$d/bin/python3"
        if [ -x "$p" ] && ok "$p"; then echo "$p"; exit 0; fi
    done
fi
echo "error: quotio needs Python 3.12 or newer (mitmproxy 12 requires it)." >&2
echo "Install one, e.g. 'pyenv install 3.12' or your OS package python3.12, then rerun make." >&2
exit 1
