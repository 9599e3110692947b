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
