# Sourced by the image scripts. `pick_builder TOOL...` keeps BUILDER if it is set (a command, e.g. "sudo buildah"),
# else sets it to the first TOOL that works here: docker only with a running daemon, podman or buildah if installed.
pick_builder() {
    if [ -n "${BUILDER:-}" ]; then
        return 0
    fi
    local tool
    for tool in "$@"; do
        if [ "$tool" = docker ]; then
            if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
                BUILDER=docker
                return 0
            fi
        elif command -v "$tool" >/dev/null 2>&1; then
            BUILDER=$tool
            return 0
        fi
    done
    echo "error: no container tool: install one of $*, or set BUILDER" >&2
    exit 1
}
