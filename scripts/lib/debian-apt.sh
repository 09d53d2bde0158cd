# Private apt for fetching Debian packages of any suite without touching the machine's apt
# configuration: a sources list, package lists and a cache of its own under one folder, passed
# to apt-get/apt-cache with -o options (NOTES.md, "Newer real engines and kernels"). Nothing is
# installed: callers download .debs and unpack them with dpkg-deb -x. Sourced by scripts.
#
#   priv_apt_init SUITE STATE_DIR     # writes the sources list (a stable suite with its updates and
#                                     # security suites), updates the lists when older than a day
#   priv_apt apt-cache depends PKG     # runs an apt tool with the private options
#   priv_apt_download DIR PKG…         # downloads .debs into DIR

# The mirror the machine already uses (its own sources), else Debian's.
priv_apt_mirror() {
  local m
  m=$(grep -hsoE '^(URIs:|deb)[[:space:]]+https?://[^[:space:]]+/debian/?([[:space:]]|$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null |
    grep -oE 'https?://[^[:space:]]+' | head -n1)
  echo "${m:-http://deb.debian.org/debian}"
}

priv_apt_init() {
  PRIV_APT_SUITE=$1
  PRIV_APT_DIR=$2
  mkdir -p "$PRIV_APT_DIR/lists/partial" "$PRIV_APT_DIR/cache/archives/partial"
  local mirror
  mirror=$(priv_apt_mirror)
  {
    echo "deb $mirror $PRIV_APT_SUITE main"
    # a stable suite's current packages (its kernel among them) come with its updates and security fixes
    if [ "$PRIV_APT_SUITE" != sid ] && [ "$PRIV_APT_SUITE" != unstable ]; then
      echo "deb $mirror $PRIV_APT_SUITE-updates main"
      echo "deb ${mirror%/debian*}/debian-security $PRIV_APT_SUITE-security main"
    fi
  } > "$PRIV_APT_DIR/sources.list"
  PRIV_APT_OPTS=(
    -o "Dir::Etc::SourceList=$PRIV_APT_DIR/sources.list"
    -o "Dir::Etc::SourceParts=/dev/null"
    -o "Dir::State::Lists=$PRIV_APT_DIR/lists"
    -o "Dir::Cache=$PRIV_APT_DIR/cache"
    -o "APT::Sandbox::User=root"
  )
  # lists of a moving suite (sid) go stale: refresh them once a day
  if [ -z "$(find "$PRIV_APT_DIR/lists" -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null)" ]; then
    apt-get "${PRIV_APT_OPTS[@]}" update -qq >/dev/null || return 1
  fi
}

priv_apt() {
  local tool=$1
  shift
  "$tool" "${PRIV_APT_OPTS[@]}" "$@"
}

priv_apt_download() {
  local dir=$1
  shift
  (cd "$dir" && apt-get "${PRIV_APT_OPTS[@]}" download -qq "$@")
}
