# Sourced by scripts/setup and scripts/test (from the repository root), so both agree on when .venv
# holds what pyproject.toml and requirements.lock pin.
INSTALL_STAMP=.venv/.trainarena-installed
install_hash() { cat pyproject.toml requirements.lock | sha256sum | cut -d' ' -f1; }
venv_is_current() { [ -x .venv/bin/python ] && [ -f "$INSTALL_STAMP" ] && [ "$(cat "$INSTALL_STAMP")" = "$(install_hash)" ]; }
