# Sourced by the build scripts of the examples that compile a core module (Go, C,
# Zig: go-component.sh, zig-component.sh): puts the path of the WASI preview 1 ->
# preview 2 reactor adapter in $ADAPTER, fetching it once.
#
# The adapter (wasi_snapshot_preview1.reactor.wasm) ships inside the npm package
# @bytecodealliance/jco, under lib/. `npm pack` fetches just that package's tarball
# (checked by npm against the registry's integrity hash), not its dependencies;
# the file is then checked against a pinned sha256 and kept in the cache directory
# ($FS_BUS_CACHE_DIR, default ~/.cache/fs-bus).
# Expects say, run and die from the caller.

JCO_VERSION="1.35.0"
ADAPTER_NAME="wasi_snapshot_preview1.reactor.wasm"
ADAPTER_SHA256="b857310c4753c8fafaa0f890e9ccf978dc3d9dbe8804b1125291a627485041d0"
ADAPTER_CACHE="${FS_BUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/fs-bus}/jco-$JCO_VERSION"
ADAPTER="$ADAPTER_CACHE/$ADAPTER_NAME"

adapter_sha256() {
    if command -v sha256sum >/dev/null 2>&1; then sha256sum "$1" | cut -d' ' -f1
    else shasum -a 256 "$1" | cut -d' ' -f1; fi
}

if [ -f "$ADAPTER" ] && [ "$(adapter_sha256 "$ADAPTER")" = "$ADAPTER_SHA256" ]; then
    say "adapter: $ADAPTER (cached)"
else
    command -v npm >/dev/null 2>&1 \
        || die "npm not found: it is needed once, to fetch $ADAPTER_NAME from the npm package @bytecodealliance/jco@$JCO_VERSION (install Node.js, which brings npm)"
    say "adapter: fetching @bytecodealliance/jco@$JCO_VERSION into $ADAPTER_CACHE"
    ADAPTER_TMP="$(mktemp -d)"
    (cd "$ADAPTER_TMP" && run npm pack --silent "@bytecodealliance/jco@$JCO_VERSION" >/dev/null) \
        || { rm -rf "$ADAPTER_TMP"; die "npm could not fetch @bytecodealliance/jco@$JCO_VERSION (is the npm registry reachable?)"; }
    run tar -xzf "$ADAPTER_TMP/bytecodealliance-jco-$JCO_VERSION.tgz" -C "$ADAPTER_TMP" "package/lib/$ADAPTER_NAME"
    GOT="$(adapter_sha256 "$ADAPTER_TMP/package/lib/$ADAPTER_NAME")"
    if [ "$GOT" != "$ADAPTER_SHA256" ]; then
        rm -rf "$ADAPTER_TMP"
        die "$ADAPTER_NAME from jco@$JCO_VERSION has sha256 $GOT, expected $ADAPTER_SHA256"
    fi
    mkdir -p "$ADAPTER_CACHE"
    mv -f "$ADAPTER_TMP/package/lib/$ADAPTER_NAME" "$ADAPTER"
    rm -rf "$ADAPTER_TMP"
fi
