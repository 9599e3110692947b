# Shared by the scripts in this folder; source it, do not run it.

step() { printf '\n== %s\n' "$*"; }

# Installs the Debian packages for the commands named that are missing; nothing when all
# are there. Each is a command that its package shares a name with (tmux), or
# command:package (turnserver:coturn).
need() {
    local missing=()
    for tool in "$@"; do command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}"); done
    install_packages "${missing[@]}"
}

# The same for C libraries, named as pkg-config knows them: opus:libopus-dev.
need_lib() {
    local missing=()
    command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
    for lib in "$@"; do pkg-config --exists "${lib%%:*}" 2>/dev/null || missing+=("${lib##*:}"); done
    install_packages "${missing[@]}"
}

install_packages() {
    [ $# -eq 0 ] && return
    step "installing $*"
    local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@"
}

# axe-core for the web client's accessibility audit (tests/common/browser.rs), from the
# npm registry into target/axe; nothing when it is there.
AXE_VERSION=4.14.1
need_axe() {
    local dir=target/axe
    [ -f "$dir/node_modules/axe-core/axe.min.js" ] && return
    step "installing axe-core $AXE_VERSION"
    mkdir -p "$dir"
    npm install --prefix "$dir" --no-audit --no-fund --silent "axe-core@$AXE_VERSION"
}

# Closes a `cargo test` log with the totals of every suite and the names of the tests that
# failed, each with its suite: cargo's own summary shows only the last suite's.
summarise_tests() {
    awk '
        /^     Running / { suite = $2 }
        /^   Doc-tests / { suite = "doc-tests " $2 }
        /^test .* \.\.\. FAILED$/ { sub(/^test /, ""); sub(/ \.\.\. FAILED$/, ""); failed[++n] = suite ": " $0 }
        /^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i } }
        /^error: test failed|^error: [0-9]+ targets? failed/ { crashed = crashed "\n" $0 }
        /^    `-p |^    `--/ { crashed = crashed "\n" $0 }
        END {
            if (n > 0) { print "\nfailing tests:"; for (i = 1; i <= n; i++) print "  " failed[i] }
            if (crashed != "" && n == 0) print "\ncargo reported:" crashed
            printf "\ntests: %d passed, %d failed\n", p, f
        }' "$1"
}
