# Sourced by the scripts that run ccusage: installs a pinned ccusage with npm
# into a scratch directory outside the source tree and prints its command.
#   ccusage_cmd VERSION DIR
ccusage_cmd() {
  local version=$1 dir=$2
  if [ ! -d "$dir/node_modules/ccusage" ]; then
    mkdir -p "$dir"
    (cd "$dir" && npm init -y >/dev/null && npm install --no-audit --no-fund "ccusage@$version" >/dev/null)
  fi
  local native=$dir/node_modules/@ccusage/ccusage-linux-x64/bin/ccusage
  if [ -e "$native" ]; then
    chmod +x "$native" 2>/dev/null || true
    echo "$native"
  else
    echo "node $dir/node_modules/ccusage/dist/index.js"
  fi
}
