#!/usr/bin/env bash
# Installs what metarl's `mujoco` feature needs, from PyPI wheels (nothing else is
# downloaded), into PREFIX (default /usr/local; the first argument overrides it):
#   - MuJoCo 3.17.0: PREFIX/lib/libmujoco.so.3.17.0 (+ libmujoco.so), its headers,
#     PREFIX/lib/pkgconfig/mujoco.pc (how mujoco-rs's build script finds it) and its
#     licenses, from the wheel `mujoco==3.17.0`;
#   - the robot models: Gymnasium's MuJoCo assets (MIT), from the wheel
#     `gymnasium==1.4.0`, into PREFIX/share/metarl/mujoco/ (where metarl looks for them,
#     or set METARL_MUJOCO_ASSETS).
# Both wheels are pinned by hash. Idempotent: what is already installed is left alone.
# Needs python3 with pip and access to PyPI.
set -euo pipefail
MJ_VERSION=3.17.0
MJ_SHA256=d66928d86a2d1b601bbaa4dc11db50214d17d5301bb8afd84721313b67ff0874
GYM_VERSION=1.4.0
GYM_SHA256=1cb947c59e7c72d8eabb2c2274c00cd20948e69f8452a9ef4092223be24fdf0e
PREFIX=${1:-/usr/local}
ASSETS="$PREFIX/share/metarl/mujoco"
ASSET_FILES="half_cheetah.xml ant.xml walker2d.xml hopper.xml swimmer.xml humanoid.xml"

have_lib() { [ -f "$PREFIX/lib/libmujoco.so.$MJ_VERSION" ] && [ -f "$PREFIX/lib/pkgconfig/mujoco.pc" ]; }
have_assets() { for f in $ASSET_FILES; do [ -f "$ASSETS/$f" ] || return 1; done; }
if have_lib && have_assets; then
  echo "install-mujoco: MuJoCo $MJ_VERSION and the Gymnasium $GYM_VERSION models are already in $PREFIX"
  exit 0
fi
if ! command -v python3 >/dev/null 2>&1 || ! python3 -m pip --version >/dev/null 2>&1; then
  echo "install-mujoco: needs python3 with pip (to fetch the mujoco and gymnasium wheels from PyPI)" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
{
  echo "mujoco==$MJ_VERSION --hash=sha256:$MJ_SHA256"
  echo "gymnasium==$GYM_VERSION --hash=sha256:$GYM_SHA256"
} > "$tmp/requirements.txt"
if ! python3 -m pip download --quiet --no-cache-dir --no-deps --require-hashes \
    --only-binary=:all: --python-version 3.11 --platform manylinux_2_28_x86_64 \
    -r "$tmp/requirements.txt" -d "$tmp" >"$tmp/pip.log" 2>&1; then
  cat "$tmp/pip.log" >&2
  echo "install-mujoco: could not download the wheels from PyPI (network or pip problem above)" >&2
  exit 1
fi
python3 - "$tmp" "$PREFIX" "$MJ_VERSION" "$ASSETS" $ASSET_FILES <<'PY'
import glob, os, shutil, sys, zipfile
tmp, prefix, ver, assets, *asset_files = sys.argv[1:]

def copy(whl, name, dst):
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with whl.open(name) as src, open(dst, "wb") as out:
        shutil.copyfileobj(src, out)

mj = zipfile.ZipFile(glob.glob(os.path.join(tmp, "mujoco-*.whl"))[0])
for name in mj.namelist():
    if name == f"mujoco/libmujoco.so.{ver}":
        copy(mj, name, os.path.join(prefix, "lib", f"libmujoco.so.{ver}"))
    elif name.startswith("mujoco/include/mujoco/") and not name.endswith("/"):
        copy(mj, name, os.path.join(prefix, "include", name[len("mujoco/include/"):]))
    elif name.startswith(f"mujoco-{ver}.dist-info/") and "LICENSE" in name.upper() and not name.endswith("/"):
        copy(mj, name, os.path.join(prefix, "share", "doc", "mujoco", os.path.basename(name)))
link = os.path.join(prefix, "lib", "libmujoco.so")
if os.path.lexists(link):
    os.remove(link)
os.symlink(f"libmujoco.so.{ver}", link)
os.makedirs(os.path.join(prefix, "lib", "pkgconfig"), exist_ok=True)
with open(os.path.join(prefix, "lib", "pkgconfig", "mujoco.pc"), "w") as f:
    f.write(f"prefix={prefix}\nlibdir=${{prefix}}/lib\nincludedir=${{prefix}}/include\n\n"
            f"Name: mujoco\nDescription: MuJoCo (from the PyPI wheel)\nVersion: {ver}\n"
            f"Libs: -L${{libdir}} -lmujoco\nCflags: -I${{includedir}}\n")

gym = zipfile.ZipFile(glob.glob(os.path.join(tmp, "gymnasium-*.whl"))[0])
names = set(gym.namelist())
for a in asset_files:
    name = f"gymnasium/envs/mujoco/assets/{a}"
    if name not in names:
        sys.exit(f"install-mujoco: {name} is not in the gymnasium wheel")
    copy(gym, name, os.path.join(assets, a))
for name in names:
    if name.startswith("gymnasium-") and name.endswith("LICENSE") and not name.endswith("/"):
        copy(gym, name, os.path.join(assets, "LICENSE-gymnasium"))
PY
if [ "$(id -u)" = 0 ] && command -v ldconfig >/dev/null 2>&1; then ldconfig; fi
echo "install-mujoco: MuJoCo $MJ_VERSION -> $PREFIX/lib (pkg-config: $PREFIX/lib/pkgconfig/mujoco.pc)"
echo "install-mujoco: Gymnasium $GYM_VERSION robot models -> $ASSETS"
if [ "$PREFIX" != /usr/local ]; then
  echo "install-mujoco: for a prefix other than /usr/local, build with PKG_CONFIG_PATH=$PREFIX/lib/pkgconfig,"
  echo "  run with LD_LIBRARY_PATH=$PREFIX/lib and METARL_MUJOCO_ASSETS=$ASSETS"
fi
