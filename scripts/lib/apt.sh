# Sourced by the setup scripts after they set SUDO. setup-test-env runs setup-k8s beside its other steps, and
# `apt-get update` fails at once on the lists lock another apt-get holds (DPkg::Lock::Timeout covers only dpkg's own
# lock), which only a machine missing packages on both sides ever sees: every apt-get of ours takes one file lock first.
apt_get() {
  "${SUDO[@]}" flock /var/lock/labhub-apt.lock env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 "$@"
}
